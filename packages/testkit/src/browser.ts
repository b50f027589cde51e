import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';

/** Debian's Chromium, which `.ci/run` installs when it is missing. */
export const CHROMIUM_PATH = '/usr/bin/chromium';

/** How the browser tests launch Chromium (playwright-core's `chromium.launch(options)`): headless, nothing fetched from the network. */
export function chromiumLaunchOptions(): { executablePath: string; headless: true; args: string[] } {
  if (!existsSync(CHROMIUM_PATH)) {
    throw new Error(`${CHROMIUM_PATH} is missing: the browser tests need Debian's chromium (apt-get install -y chromium; .ci/run does it)`);
  }
  return {
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  };
}

/** The folder browser tests write screenshots and measurements to (`test-artifacts/<name>` at the repository root, gitignored). */
export function artifactDir(name: string): string {
  const dir = join(import.meta.dirname, '..', '..', '..', 'test-artifacts', name);
  mkdirSync(dir, { recursive: true });
  return dir;
}
