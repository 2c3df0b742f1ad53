// Outside a component, 'graft:plugin/host@0.1.0' does not exist: map it to
// a stand-in so the SDK runs under plain Node (`npm test`).
import { register } from 'node:module';

register('./hooks.mjs', import.meta.url);
