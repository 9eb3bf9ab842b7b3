// The analyst console in headless Chromium (Debian's /usr/bin/chromium driven by playwright-core;
// no browser download): `csq serve` on the tiny fixture model with the ATT&CK data and two
// SigmaHQ rules, then a chat message answered as a stream, two events run through the rules,
// the two alerts triaged, a response plan opened, a technique link followed to its
// knowledge-base entry. Any console error, page error, failed request or request to another
// origin fails the test. Screenshots go to $CSQ_ARTIFACTS (build/artifacts/console.png).
// Exits 77 (CTest SKIP_RETURN_CODE) when Chromium or playwright-core is missing.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';

const SKIP = 77;
const binary = process.env.CSQ_BINARY;
const model = process.env.CSQ_MODEL;
const kbDir = process.env.CSQ_KB_DIR;
const rulesDir = process.env.CSQ_SIGMA_RULES;
const artifacts = process.env.CSQ_ARTIFACTS || 'artifacts';
const chromiumPath = process.env.CSQ_CHROMIUM || '/usr/bin/chromium';

function skip(why) {
  console.log(`SKIP: ${why}`);
  process.exit(SKIP);
}

if (!existsSync(chromiumPath)) skip(`no Chromium at ${chromiumPath} (scripts/setup.sh installs Debian's chromium)`);
let chromium;
try {
  ({ chromium } = await import('playwright-core'));
} catch (e) {
  skip(`playwright-core is not installed in tests/browser (scripts/setup.sh runs npm ci there): ${e.message}`);
}
for (const [name, value] of Object.entries({ CSQ_BINARY: binary, CSQ_MODEL: model, CSQ_KB_DIR: kbDir, CSQ_SIGMA_RULES: rulesDir }))
  if (!value) throw new Error(`${name} must be set (tests/CMakeLists.txt sets it)`);
for (const dir of [model, kbDir, rulesDir]) if (!existsSync(dir)) skip(`test data missing: ${dir}`);

const rules = ['proc_creation_win_powershell_encode.yml', 'proc_creation_win_whoami_all_execution.yml']
  .map((name) => path.join(rulesDir, 'windows', 'process_creation', name));
const events = [
  { Channel: 'Microsoft-Windows-Sysmon/Operational', EventID: 1, UtcTime: '2024-05-01 10:00:00.000', Computer: 'WS-042',
    User: 'CORP\\bob', ParentImage: 'C:\\Program Files\\Microsoft Office\\root\\Office16\\WINWORD.EXE',
    Image: 'C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe',
    CommandLine: 'powershell.exe -nop -w hidden -enc SQBFAFgAIAAoAE4AZQB3AC0ATwBiAGoAZQBjAHQAKQA=' },
  { Channel: 'Microsoft-Windows-Sysmon/Operational', EventID: 1, UtcTime: '2024-05-01 10:00:07.000', Computer: 'WS-042',
    User: 'CORP\\bob', ParentImage: 'C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe',
    Image: 'C:\\Windows\\System32\\whoami.exe', OriginalFileName: 'whoami.exe', CommandLine: 'whoami /all' },
];

function startServer() {
  const args = ['serve', '--model', model, '--port', '0', '--threads', '2', '--parallel', '2', '--ctx', '8192',
                '--kb', kbDir, '--rules', ...rules];
  const server = spawn(binary, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  const url = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('csq serve did not start within 60 s:\n' + log)), 60000);
    server.stderr.on('data', (chunk) => {
      log += chunk.toString();
      const m = log.match(/on (http:\/\/127\.0\.0\.1:\d+)\/v1/);
      if (m) { clearTimeout(timer); resolve(m[1]); }
    });
    server.on('exit', (code) => { clearTimeout(timer); reject(new Error(`csq serve exited with ${code}:\n${log}`)); });
  });
  return { server, url, log: () => log };
}

const started = Date.now();
const step = (what) => console.log(`[${((Date.now() - started) / 1000).toFixed(1)} s] ${what}`);
const { server, url, log } = startServer();
let browser;
const problems = [];
try {
  const origin = await url;
  step(`csq serve on ${origin}`);
  browser = await chromium.launch({ executablePath: chromiumPath, headless: true, args: ['--no-sandbox'] });
  const page = await browser.newPage({ viewport: { width: 1440, height: 1000 } });
  page.setDefaultTimeout(45000);
  page.on('console', (m) => { if (m.type() === 'error') problems.push(`console error: ${m.text()}`); });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  const failedRequests = [];
  page.on('requestfailed', (r) => failedRequests.push(r));
  page.on('response', (r) => { if (r.status() >= 400) problems.push(`HTTP ${r.status()}: ${r.request().method()} ${r.url()}`); });
  await page.route('**/*', (route) => {
    if (new URL(route.request().url()).origin === origin) return route.continue();
    problems.push(`request to another origin: ${route.request().url()}`);
    return route.abort();
  });

  await page.goto(origin + '/');
  await page.waitForSelector('#server-status[data-kind="ok"]');
  step(`console loaded: ${await page.textContent('#server-status')}`);

  // Chat: one question, the answer streamed (several server-sent events) into the page.
  await page.click('#tab-chat');
  await page.fill('#chat-max-tokens', '24');
  await page.fill('#chat-input', 'Which ATT&CK technique covers encoded PowerShell commands?');
  // Count the answer's updates on the page: a streamed answer grows in several steps. Records,
  // not observer calls: events that arrive in one network read are shown one by one within a
  // single task, which the observer reports in one call (a fast model sends 24 tokens in a few
  // milliseconds).
  await page.evaluate(() => {
    window.csqUpdates = 0;
    new MutationObserver((records) => { window.csqUpdates += records.length; })
      .observe(document.getElementById('chat-log'), { subtree: true, childList: true, characterData: true });
  });
  const streamed = page.waitForResponse((r) => r.url().endsWith('/v1/chat/completions'));
  await page.click('#chat-send');
  const chatResponse = await streamed;
  if (!chatResponse.headers()['content-type'].startsWith('text/event-stream')) throw new Error('the chat answer was not streamed');
  await page.waitForSelector('.turn-assistant:not([aria-busy])');
  const answer = (await page.textContent('.turn-assistant .content')) + (await page.textContent('.turn-assistant .reasoning-text'));
  if (!answer.trim()) throw new Error('the streamed answer did not reach the page');
  const updates = await page.evaluate(() => window.csqUpdates);
  if (updates < 6) throw new Error(`the answer arrived in ${updates} page updates; a stream of 24 tokens makes more`);
  step(`chat: answer streamed in ${updates} page updates, ${answer.length} characters shown`);

  // Alerts: two events through the server's Sigma rules, then triage.
  await page.click('#tab-alerts');
  await page.fill('#alerts-input', events.map((e) => JSON.stringify(e)).join('\n'));
  await page.click('#detect');
  await page.waitForSelector('#alerts-body tr:nth-child(2)');
  const rows = await page.$$eval('#alerts-body tr', (trs) => trs.map((tr) => [...tr.cells].map((c) => c.textContent.trim())));
  if (rows.length !== 2) throw new Error(`expected 2 alerts, got ${JSON.stringify(rows)}`);
  if (!rows[0][3].includes('frack113') || !rows[1][3].includes('Florian Roth'))
    throw new Error(`each alert must show its rule's author: ${JSON.stringify(rows)}`);
  step(`detection: ${rows.map((r) => `${r[1]} (${r[2]}, ${r[3]})`).join('; ')}`);

  await page.click('#triage');
  await page.waitForFunction(() => document.querySelectorAll('#alerts-body .verdict:not(.pending)').length === 2, null,
                             { timeout: 120000 });
  const verdicts = await page.$$eval('#alerts-body .verdict', (v) => v.map((x) => x.textContent));
  step(`triage: ${verdicts.join(', ')}`);

  // The response plan of the first alert.
  await page.click('#alerts-body tr:nth-child(1) button.linkish');
  await page.click('#respond');
  await page.waitForFunction(() => !document.querySelector('#plan [data-kind="busy"]'), null, { timeout: 180000 });
  const planError = await page.$('#plan [data-kind="error"]');
  if (planError) throw new Error('the response plan failed: ' + await planError.textContent());
  await page.waitForSelector('#plan a.id');
  step(`plan: ${await page.textContent('#plan h3')}`);

  mkdirSync(artifacts, { recursive: true });
  await page.screenshot({ path: path.join(artifacts, 'console.png'), fullPage: true });

  // Follow the plan's first technique to its knowledge-base entry.
  const link = await page.$('#plan .techniques a.id');
  const id = (await link.textContent()).trim();
  await link.click();
  await page.waitForSelector('#view-kb:not([hidden]) #kb-result h2 .id-title');
  const shown = (await page.textContent('#kb-result h2 .id-title')).trim();
  if (shown !== id) throw new Error(`followed ${id} but the knowledge base shows ${shown}`);
  const notice = await page.textContent('#kb-notice');
  if (!notice.includes('MITRE')) throw new Error('the ATT&CK notice is missing beside the knowledge-base entry');
  step(`knowledge base: ${await page.textContent('#kb-result h2')}`);
  await page.screenshot({ path: path.join(artifacts, 'console-kb.png') });

  // The same page at 360 px wide.
  await page.setViewportSize({ width: 360, height: 780 });
  await page.click('#tab-alerts');
  await page.screenshot({ path: path.join(artifacts, 'console-360.png'), fullPage: true });
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  if (overflow > 0) throw new Error(`at 360 px the page is ${overflow} px wider than the screen`);
  // Chromium can report a fetch body read to its end through a stream reader as aborted
  // (microsoft/playwright#42742): the chat stream is excused only when the page received its
  // final [DONE] event (data-complete), which it cannot without the whole body.
  const streamCompleted = (await page.$('.turn-assistant[data-complete="true"]')) !== null;
  for (const r of failedRequests) {
    const excused = streamCompleted && r.url().endsWith('/v1/chat/completions') && r.failure()?.errorText === 'net::ERR_ABORTED';
    if (excused) step('chat stream reported aborted after its [DONE] (microsoft/playwright#42742); not counted');
    else problems.push(`request failed: ${r.method()} ${r.url()}: ${r.failure()?.errorText}`);
  }
} catch (e) {
  problems.push(String(e && e.stack ? e.stack : e));
} finally {
  if (browser) await browser.close();
  server.kill('SIGTERM');
  await new Promise((resolve) => { if (server.exitCode !== null) resolve(); else server.on('exit', resolve); });
}
if (problems.length) {
  console.error('FAILED:\n' + problems.join('\n') + '\n--- csq serve log (tail) ---\n' + log().slice(-3000));
  process.exit(1);
}
step(`passed; screenshots in ${path.resolve(artifacts)}`);
