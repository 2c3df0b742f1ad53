export async function resolve(specifier, context, next) {
  if (specifier === 'graft:plugin/host@0.1.0') {
    return { url: new URL('./host-stub.js', import.meta.url).href, shortCircuit: true };
  }
  return next(specifier, context);
}
