// Vite's `?raw` imports: a file's text, bundled into the test.
declare module "*?raw" {
  const text: string;
  export default text;
}

// Vite's import.meta.glob, as the tests use it.
interface ImportMeta {
  glob(pattern: string, options: { query: string; import: string; eager: true }): Record<string, unknown>;
}
