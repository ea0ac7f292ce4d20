import { initBackend } from '../src/engine/backend.js';

// Every test file starts on the default backend (wasm unless PARRY_BACKEND says otherwise).
await initBackend();
