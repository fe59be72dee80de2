/** Seeded randomness for tests (it lives in core: the chaos runner, shipped, uses it too). */
export { seededRandom, type SeededRandom } from '../core/seeded-random';
