// What on-call does in the Airflow UI during the incident drill (tests/test_operations.py), in the
// system's headless Chromium:
//   node incident.mjs read  <task instance page URL> <out.json> [screenshot.png]   the page's text, once its log shows the advice
//   node incident.mjs clear <task instance page URL> <out.json>                     Clear (with downstream, the dialog's default) + Confirm
import { writeFileSync } from 'node:fs';
import { chromium } from 'playwright-core';

const [mode, url, out, shot] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking'],
});
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  await page.goto(url, { waitUntil: 'networkidle' });
  if (mode === 'read') {
    await page.getByText('What to do (').first().waitFor({ timeout: 60000 });
    if (shot) await page.screenshot({ path: shot, fullPage: true });
    writeFileSync(out, JSON.stringify({ text: await page.innerText('body') }));
  } else if (mode === 'clear') {
    await page.getByRole('button', { name: /clear/i }).first().click();
    const dialog = page.getByRole('dialog');
    await dialog.getByText('Affected Tasks').waitFor({ timeout: 30000 });
    const cleared = page.waitForResponse(
      (r) => r.url().includes('/clearTaskInstances') && r.request().postDataJSON()?.dry_run === false,
      { timeout: 60000 },
    );
    const preview = await dialog.innerText();
    await dialog.getByRole('button', { name: 'Confirm' }).click();
    const resp = await cleared;
    writeFileSync(out, JSON.stringify({ status: resp.status(), preview, body: await resp.text() }));
  } else {
    throw new Error(`unknown mode ${mode}`);
  }
} finally {
  await browser.close();
}
