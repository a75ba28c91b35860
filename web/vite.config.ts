import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

// The dashboard is a static build served by Warden itself at `/` (src/http/dashboard.ts).
export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: '/',
  // Preact's automatic JSX runtime, compiled by Vite's own transformer (no Babel plugin needed).
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  resolve: { alias: { react: 'preact/compat', 'react-dom': 'preact/compat' } },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    // Inline assets would need `data:` script or style sources; keep every asset a file under the CSP.
    assetsInlineLimit: 0,
    // The module-preload polyfill is injected as an inline script, which the CSP forbids; modern browsers need none.
    modulePreload: { polyfill: false },
    sourcemap: false,
    chunkSizeWarningLimit: 400,
  },
  logLevel: 'warn',
});
