// Opens every HTML file under a folder (e.g. GX Data Docs) in the system's headless Chromium and
// reports the pages where a planted payload ran (it sets window.__xss) or shows as markup.
import { readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const [dir, out] = process.argv.slice(2);
const files = [];
const walk = (d) => readdirSync(d).forEach((f) => {
  const p = join(d, f);
  if (statSync(p).isDirectory()) walk(p); else if (p.endsWith('.html')) files.push(p);
});
walk(dir);
const browser = await chromium.launch({ executablePath: '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking'] });
const report = { pages: files.length, ran: [], markup: [] };
try {
  const page = await browser.newPage();
  for (const f of files) {
    await page.goto('file://' + f, { waitUntil: 'load' });
    await page.waitForTimeout(300);
    if (await page.evaluate(() => window.__xss === 1)) report.ran.push(f);
    if (await page.evaluate(() => document.querySelectorAll('img[src="x"]').length > 0)) report.markup.push(f);
  }
} finally {
  await browser.close();
}
writeFileSync(out, JSON.stringify(report));
