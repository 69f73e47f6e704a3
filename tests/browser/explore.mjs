// Exploration helper (not a test): dumps the visible text and buttons of a page of the Airflow UI.
import { chromium } from 'playwright-core';
const [url, shot] = process.argv.slice(2);
const browser = await chromium.launch({ executablePath: '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking'] });
const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
await page.goto(url, { waitUntil: 'networkidle' });
await page.waitForTimeout(3000);
const buttons = await page.locator('button').evaluateAll(bs => bs.map(b => (b.innerText || b.getAttribute('aria-label') || '').trim()).filter(Boolean));
console.log(JSON.stringify({ title: await page.title(), buttons, text: (await page.innerText('body')).slice(0, 6000) }, null, 1));
if (shot) await page.screenshot({ path: shot, fullPage: true });
await browser.close();
