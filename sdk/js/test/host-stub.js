// Stand-in for graft's host interface under plain Node.
export const logged = [];
export function log(level, message) {
  logged.push([level, message]);
}
export function pluginName() {
  return 'node';
}
export function now() {
  return BigInt(Date.now()) * 1000000n;
}
