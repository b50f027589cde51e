#!/usr/bin/env node
// The `switchboard` binary. A committed file, so it exists (and is executable) when npm links
// bins, before the build has made `dist/`.
await import('../dist/bin.js');
