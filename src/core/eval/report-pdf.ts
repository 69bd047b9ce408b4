/**
 * PDF of a report page, printed by a system Chromium through playwright-core (Node only).
 *
 * playwright-core ships no browser and downloads none; Debian's `chromium` package is what the
 * platform provides. It is imported lazily so that loading this module (the CLI does on start-up)
 * costs nothing when no PDF is asked for.
 */
import { existsSync } from 'node:fs';
import { UsageError } from '../errors.js';

export interface HtmlToPdfOptions {
  /** Chromium binary; default $RELPROP_CHROMIUM, then /usr/bin/chromium. */
  readonly executablePath?: string;
}

const HINT = "install Debian's chromium or set RELPROP_CHROMIUM (the path of a Chromium binary)";

// No network, no profile sync, no update checks: the page is self-contained and a PDF run should
// not phone anywhere. --no-sandbox because the usual places this runs (containers, CI) lack the
// user namespaces Chromium's sandbox needs.
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

export async function htmlToPdf(html: string, pdfPath: string, options: HtmlToPdfOptions = {}): Promise<void> {
  const executablePath = options.executablePath ?? process.env.RELPROP_CHROMIUM ?? '/usr/bin/chromium';
  if (!existsSync(executablePath)) throw new UsageError(`Chromium not found at ${executablePath}: ${HINT}`);
  const { chromium } = await import('playwright-core');
  let browser;
  try {
    browser = await chromium.launch({ executablePath, args: ARGS });
  } catch (err) {
    const detail = (err instanceof Error ? err.message : String(err)).split('\n')[0];
    throw new UsageError(`cannot start Chromium at ${executablePath} (${detail}): ${HINT}`);
  }
  try {
    const page = await browser.newPage();
    await page.setContent(html, { waitUntil: 'load' });
    await page.pdf({ path: pdfPath, format: 'A4', printBackground: true, preferCSSPageSize: false, margin: { top: '12mm', bottom: '12mm', left: '12mm', right: '12mm' } });
  } finally {
    await browser.close();
  }
}
