// The csq analyst console: plain JavaScript, no framework, no build step, served from the csq
// binary. Every text that comes from an alert, the model or the knowledge base is put on the
// page with textContent (never innerHTML), and nothing is fetched from anywhere but this origin.
'use strict';

const KEY_STORAGE = 'csq-api-key';
const TRIAGE_BATCH = 64;  // the server's most records per POST /v1/triage
const TECHNIQUE_ID = /^T\d{4}(\.\d{3})?$/;
const MITIGATION_ID = /^M\d{4}$/;

const $ = (id) => document.getElementById(id);

// ---------------------------------------------------------------------------------------------
// DOM helpers: elements built from data, text always as text.

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === 'class') node.className = value;
    else if (name === 'text') node.textContent = value;
    else if (name.startsWith('on')) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? '' : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function clear(node) {
  while (node.firstChild) node.firstChild.remove();
  return node;
}

function say(node, text, kind = '') {
  node.textContent = text;
  node.dataset.kind = kind;
}

// A knowledge-base link for an ATT&CK id; anything else stays plain text.
function kbLink(id, label) {
  const text = String(id);
  if (!TECHNIQUE_ID.test(text) && !MITIGATION_ID.test(text)) return document.createTextNode(label || text);
  return el('a', { href: '#kb/' + text, class: 'id', text: label || text });
}

// ATT&CK prose as plain text: citation markers dropped, Markdown links reduced to their text.
function plainAttack(text) {
  return String(text || '')
    .replace(/\(Citation:[^)]*\)/g, '')
    .replace(/\[([^\]]+)\]\([^)]*\)/g, '$1')
    .replace(/<\/?code>/g, '')
    .replace(/[ \t]+\n/g, '\n')
    .trim();
}

function paragraphs(text) {
  return plainAttack(text).split(/\n{2,}/).filter(Boolean).map((p) => el('p', { text: p }));
}

// ---------------------------------------------------------------------------------------------
// The API: same origin only; the key (when the server wants one) asked once per tab.

let keyPrompt = null;

function askKey() {
  if (keyPrompt) return keyPrompt;
  keyPrompt = new Promise((resolve) => {
    const dialog = $('key-dialog');
    const input = $('key-input');
    input.value = '';
    const done = (event) => {
      event.preventDefault();
      if (!input.value) return;
      sessionStorage.setItem(KEY_STORAGE, input.value);
      $('key-form').removeEventListener('submit', done);
      dialog.close();
      keyPrompt = null;
      resolve();
    };
    $('key-form').addEventListener('submit', done);
    dialog.showModal();
    input.focus();
  });
  return keyPrompt;
}

function headers(json) {
  const h = {};
  if (json) h['Content-Type'] = 'application/json';
  const key = sessionStorage.getItem(KEY_STORAGE);
  if (key) h.Authorization = 'Bearer ' + key;
  return h;
}

class ApiFailure extends Error {
  constructor(status, message, code) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function failure(response) {
  let message = response.status + ' ' + response.statusText;
  let code = '';
  try {
    const body = await response.json();
    if (body && body.error) {
      message = body.error.message || message;
      code = body.error.code || '';
    }
  } catch (_) { /* not JSON: keep the status line */ }
  return new ApiFailure(response.status, message, code);
}

// fetch() with the key; a 401 asks for the key and tries once more.
async function call(path, { method = 'GET', body, json = true, signal } = {}) {
  for (let attempt = 0; ; ++attempt) {
    const response = await fetch(path, {
      method,
      headers: headers(json && body !== undefined),
      body: body === undefined ? undefined : json ? JSON.stringify(body) : body,
      signal,
      credentials: 'omit',
    });
    if (response.status === 401 && attempt === 0) {
      sessionStorage.removeItem(KEY_STORAGE);
      await askKey();
      continue;
    }
    if (!response.ok) throw await failure(response);
    return response;
  }
}

const getJson = async (path) => (await call(path)).json();
// A task answer that takes over a second is committed as 200 before it is known
// (docs/server.md): an error that ended it arrives as the body's error object.
async function postJson(path, body) {
  const answer = await (await call(path, { method: 'POST', body })).json();
  if (answer && answer.error) throw new ApiFailure(200, answer.error.message || 'the request failed', answer.error.code || '');
  return answer;
}

// ---------------------------------------------------------------------------------------------
// Tabs (WAI-ARIA tabs: arrow keys move between them).

const TABS = ['alerts', 'chat', 'kb'];

function showTab(name, focus = false) {
  for (const t of TABS) {
    const tab = $('tab-' + t);
    const selected = t === name;
    tab.setAttribute('aria-selected', String(selected));
    tab.tabIndex = selected ? 0 : -1;
    $('view-' + t).hidden = !selected;
    if (selected && focus) tab.focus();
  }
}

function setupTabs() {
  TABS.forEach((name, i) => {
    const tab = $('tab-' + name);
    tab.addEventListener('click', () => {
      if (name === 'kb' && !location.hash.startsWith('#kb')) location.hash = '#kb';
      else if (name !== 'kb' && location.hash.startsWith('#kb')) history.pushState(null, '', location.pathname);
      showTab(name);
    });
    tab.addEventListener('keydown', (event) => {
      const step = { ArrowRight: 1, ArrowLeft: -1 }[event.key];
      if (!step) return;
      event.preventDefault();
      const next = TABS[(i + step + TABS.length) % TABS.length];
      $('tab-' + next).click();
      showTab(next, true);
    });
  });
}

// ---------------------------------------------------------------------------------------------
// Alerts: intake, queue, triage, response plans.

const state = { alerts: [], selected: -1 };

// JSON Lines, one pretty-printed object, or a JSON array of objects.
function parseRecords(text) {
  const trimmed = text.trim();
  if (!trimmed) throw new Error('nothing to load: paste or upload JSON Lines');
  try {
    const whole = JSON.parse(trimmed);
    if (Array.isArray(whole)) {
      whole.forEach((r, i) => {
        if (!r || typeof r !== 'object' || Array.isArray(r)) throw new Error(`item ${i + 1}: not a JSON object`);
      });
      return whole;
    }
    if (whole && typeof whole === 'object') return [whole];
  } catch (e) {
    if (!(e instanceof SyntaxError)) throw e;
  }
  const records = [];
  text.split('\n').forEach((line, i) => {
    if (!line.trim()) return;
    let record;
    try {
      record = JSON.parse(line);
    } catch (e) {
      throw new Error(`line ${i + 1}: not JSON (${e.message})`);
    }
    if (!record || typeof record !== 'object' || Array.isArray(record)) throw new Error(`line ${i + 1}: not a JSON object`);
    records.push(record);
  });
  return records;
}

const field = (obj, ...path) => path.reduce((o, k) => (o && typeof o === 'object' ? o[k] : undefined), obj);
const text = (v) => (v === undefined || v === null ? '' : typeof v === 'object' ? JSON.stringify(v) : String(v));

// The rule behind an alert, whatever wrote it: csq detect, a Sigma-based SIEM, Wazuh.
function ruleOf(record) {
  const rule = record.rule && typeof record.rule === 'object' ? record.rule : {};
  return {
    title: text(record.title ?? rule.title ?? rule.name ?? rule.description ?? record.rule_name ?? ''),
    level: text(record.level ?? rule.level ?? record.severity ?? ''),
    author: text(record.author ?? rule.author ?? ''),
    id: text(record.rule_id ?? rule.id ?? ''),
  };
}

// ATT&CK ids an alert names: Sigma tags (attack.t1059.001), Wazuh rule.mitre.id, a techniques list.
function alertTechniques(record) {
  const ids = new Set();
  const tags = [].concat(record.tags ?? [], field(record, 'rule', 'tags') ?? []);
  for (const tag of tags) {
    const m = /^attack\.(t\d{4}(?:\.\d{3})?)$/i.exec(String(tag));
    if (m) ids.add(m[1].toUpperCase());
  }
  for (const id of [].concat(field(record, 'rule', 'mitre', 'id') ?? [], record.techniques ?? []))
    if (TECHNIQUE_ID.test(String(id).toUpperCase())) ids.add(String(id).toUpperCase());
  return [...ids];
}

function levelClass(level) {
  const l = level.toLowerCase();
  if (['critical', 'high', 'medium', 'low', 'informational'].includes(l)) return 'level level-' + l;
  const n = Number(level);  // Wazuh levels 0-15
  if (Number.isFinite(n)) return 'level level-' + (n >= 12 ? 'critical' : n >= 8 ? 'high' : n >= 5 ? 'medium' : 'low');
  return 'level';
}

function verdictBadge(triage) {
  if (!triage) return el('span', { class: 'verdict pending', text: '—' });
  if (triage.error) return el('span', { class: 'verdict failed', text: 'error', title: triage.error });
  const pct = Math.round((triage.confidence ?? 0) * 100);
  return el('span', { class: 'verdict verdict-' + triage.verdict }, triage.verdict, el('small', { text: ` ${pct}%` }));
}

function techniqueLinks(ids) {
  const span = el('span', { class: 'ids' });
  ids.forEach((id, i) => {
    if (i) span.append(' ');
    span.append(kbLink(id));
  });
  return span;
}

function setAlerts(records, origin) {
  state.alerts = records.map((record) => ({ record, triage: null, plan: null }));
  state.selected = -1;
  renderQueue();
  renderDetail();
  $('triage').disabled = state.alerts.length === 0;
  say($('alerts-message'), `${records.length} alert${records.length === 1 ? '' : 's'} loaded${origin ? ' ' + origin : ''}.`, 'ok');
}

function renderQueue() {
  const body = clear($('alerts-body'));
  $('queue-empty').hidden = state.alerts.length > 0;
  const counts = { malicious: 0, suspicious: 0, benign: 0 };
  state.alerts.forEach((a, i) => {
    const rule = ruleOf(a.record);
    if (a.triage && counts[a.triage.verdict] !== undefined) counts[a.triage.verdict]++;
    const verdictTechniques = a.triage && !a.triage.error ? a.triage.techniques || [] : [];
    const techniques = [...new Set([...alertTechniques(a.record), ...verdictTechniques])];
    const open = el('button', { type: 'button', class: 'linkish', text: rule.title || `alert ${i + 1}`,
                                'aria-label': `Open alert ${i + 1}: ${rule.title || 'untitled'}`,
                                onclick: () => select(i) });
    const row = el('tr', { class: i === state.selected ? 'selected' : '', 'aria-selected': String(i === state.selected) },
      el('td', { class: 'num', text: i + 1 }),
      el('td', { class: 'rule' }, open),
      el('td', {}, rule.level ? el('span', { class: levelClass(rule.level), text: rule.level }) : ''),
      el('td', { class: 'author', text: rule.author || '—' }),
      el('td', {}, verdictBadge(a.triage)),
      el('td', {}, techniqueLinks(techniques)));
    row.addEventListener('click', (event) => {
      if (!event.target.closest('a, button')) select(i);
    });
    body.append(row);
  });
  const triaged = state.alerts.filter((a) => a.triage).length;
  $('queue-summary').textContent = state.alerts.length === 0 ? '' :
    `${state.alerts.length} alerts · ${triaged} triaged · ${counts.malicious} malicious · ${counts.suspicious} suspicious · ${counts.benign} benign`;
}

function select(i) {
  state.selected = i;
  renderQueue();
  renderDetail();
  $('detail-title').focus();
}

function fact(dl, term, value) {
  if (value === undefined || value === null || value === '') return;
  dl.append(el('dt', { text: term }), el('dd', {}, value));
}

function renderTriage(section, triage) {
  clear(section);
  if (!triage) return;
  section.append(el('h3', { text: 'Triage' }));
  if (triage.error) {
    section.append(el('p', { class: 'message', 'data-kind': 'error', text: 'The model\'s answer failed: ' + triage.error }));
    return;
  }
  section.append(el('p', {}, verdictBadge(triage), ' ', techniqueLinks(triage.techniques || [])));
  section.append(el('p', { class: 'rationale', text: triage.rationale }));
  if ((triage.next_steps || []).length)
    section.append(el('h4', { text: 'Next steps' }), el('ol', {}, triage.next_steps.map((s) => el('li', { text: s }))));
}

function renderDetail() {
  const a = state.alerts[state.selected];
  $('detail-empty').hidden = !!a;
  $('detail-body').hidden = !a;
  if (!a) return;
  const rule = ruleOf(a.record);
  $('detail-title').textContent = rule.title || `Alert ${state.selected + 1}`;
  $('detail-title').tabIndex = -1;
  const dl = clear($('detail-facts'));
  fact(dl, 'Level', rule.level ? el('span', { class: levelClass(rule.level), text: rule.level }) : '');
  fact(dl, 'Rule author', rule.author || 'not given');
  fact(dl, 'Rule id', rule.id);
  fact(dl, 'Time', text(a.record.time ?? a.record.timestamp ?? a.record['@timestamp'] ?? ''));
  fact(dl, 'Source', a.record.source !== undefined ? `${text(a.record.source)}${a.record.record ? ':' + a.record.record : ''}` : '');
  const tags = alertTechniques(a.record);
  if (tags.length) fact(dl, 'ATT&CK tags', techniqueLinks(tags));
  const matched = a.record.matched && typeof a.record.matched === 'object' ? Object.entries(a.record.matched) : [];
  if (matched.length)
    fact(dl, 'Matched', el('ul', { class: 'matched' }, matched.map(([k, v]) => el('li', {}, el('code', { text: k }), ' ', text(v)))));
  renderTriage($('detail-triage'), a.triage);
  renderPlan($('plan'), a.plan);
  $('detail-raw').textContent = JSON.stringify(a.record, null, 2);
}

async function triage(indices) {
  const context = $('site-context').value;
  const message = $('alerts-message');
  const buttons = [$('triage'), $('triage-one')];
  buttons.forEach((b) => { b.disabled = true; });
  try {
    for (let start = 0; start < indices.length; start += TRIAGE_BATCH) {
      const batch = indices.slice(start, start + TRIAGE_BATCH);
      say(message, `Triaging ${start + 1}–${start + batch.length} of ${indices.length}…`, 'busy');
      const answer = await postJson('/v1/triage', { records: batch.map((i) => state.alerts[i].record), context });
      answer.data.forEach((line, k) => { state.alerts[batch[k]].triage = line; });
      renderQueue();
      renderDetail();
    }
    const failed = indices.filter((i) => state.alerts[i].triage && state.alerts[i].triage.error).length;
    say(message, `Triaged ${indices.length} alert${indices.length === 1 ? '' : 's'}` +
      (failed ? `; ${failed} answer${failed === 1 ? '' : 's'} failed (see the alert)` : '') + '.', failed ? 'warn' : 'ok');
  } catch (e) {
    say(message, 'Triage failed: ' + e.message, 'error');
  } finally {
    $('triage').disabled = state.alerts.length === 0;
    $('triage-one').disabled = false;
  }
}

function renderPlan(section, plan) {
  clear(section);
  if (!plan) return;
  if (plan.pending) {
    section.append(el('p', { class: 'message', 'data-kind': 'busy', text: 'Writing the response plan…' }));
    return;
  }
  if (plan.error) {
    section.append(el('p', { class: 'message', 'data-kind': 'error', text: 'Response plan failed: ' + plan.error }));
    return;
  }
  section.append(el('h3', {}, 'Response plan ', el('span', { class: levelClass(plan.severity || ''), text: plan.severity })));
  section.append(el('p', { class: 'summary-text', text: plan.summary }));
  if ((plan.techniques || []).length) {
    section.append(el('h4', { text: 'Techniques' }));
    section.append(el('ul', { class: 'techniques' }, plan.techniques.map((t) =>
      el('li', {}, kbLink(t.id), ' ', t.name, el('small', { text: ` · ${(t.tactics || []).join(', ')} · from ${t.source}` })))));
  }
  let function_ = '';
  for (const category of plan.plan || []) {
    if (!category.steps.length) continue;
    if (category.function !== function_) {
      function_ = category.function;
      section.append(el('h4', { class: 'function', text: function_ }));
    }
    section.append(el('div', { class: 'category' },
      el('h5', {}, el('span', { class: 'csf', text: category.category }), ' ', category.name),
      el('ol', {}, category.steps.map((s) => el('li', { value: s.step },
        el('span', { text: s.action }),
        s.mitigations.length ? el('span', { class: 'mitigations' }, ' ', s.mitigations.map((m) => [kbLink(m.id), ' ', m.name, ' '])) : '')))));
  }
  if ((plan.rejected || []).length) {
    section.append(el('details', { class: 'rejected' },
      el('summary', { text: `${plan.rejected.length} id${plan.rejected.length === 1 ? '' : 's'} rejected by validation` }),
      el('ul', {}, plan.rejected.map((r) => el('li', {}, el('code', { text: r.id }), ` (${r.kind}${r.step ? ', step ' + r.step : ''}): ${r.reason}`)))));
  }
  if (plan.notice) section.append(el('p', { class: 'notice', text: plan.notice }));
}

async function respond() {
  const index = state.selected;
  const a = state.alerts[index];
  if (!a) return;
  // A triage line carrying its alert: the plan starts from the verdict's techniques.
  const alert = a.triage && !a.triage.error ? { ...a.triage, alert: a.record } : a.record;
  a.plan = { pending: true };
  renderPlan($('plan'), a.plan);
  $('respond').disabled = true;
  try {
    a.plan = await postJson('/v1/respond', { alert });
  } catch (e) {
    a.plan = { error: e.message };
  } finally {
    $('respond').disabled = false;
  }
  if (state.selected === index) renderPlan($('plan'), a.plan);
}

async function detect() {
  const message = $('alerts-message');
  const events = $('alerts-input').value;
  if (!events.trim()) return say(message, 'Paste or upload events first.', 'error');
  say(message, 'Running the Sigma rules…', 'busy');
  try {
    const answer = await (await call('/v1/detect', { method: 'POST', body: events, json: false })).json();
    setAlerts(answer.alerts, `from ${answer.events} events by the server's Sigma rules` +
      (answer.problems.length ? `; ${answer.problems.length} records skipped (first: record ${answer.problems[0].record}: ${answer.problems[0].reason})` : ''));
  } catch (e) {
    say(message, e.code === 'no_rules' ? e.message + '. Use "Load as alerts" for alerts.' : 'Detection failed: ' + e.message, 'error');
  }
}

function setupAlerts() {
  $('alerts-form').addEventListener('submit', (event) => {
    event.preventDefault();
    try {
      setAlerts(parseRecords($('alerts-input').value));
    } catch (e) {
      say($('alerts-message'), e.message, 'error');
    }
  });
  $('alerts-file').addEventListener('change', async () => {
    const file = $('alerts-file').files[0];
    if (!file) return;
    $('alerts-input').value = await file.text();
    say($('alerts-message'), `${file.name} read (${file.size} bytes): load it as alerts or run the Sigma rules on it.`, 'ok');
  });
  $('detect').addEventListener('click', detect);
  $('triage').addEventListener('click', () => triage(state.alerts.map((_, i) => i)));
  $('triage-one').addEventListener('click', () => triage([state.selected]));
  $('respond').addEventListener('click', respond);
}

// ---------------------------------------------------------------------------------------------
// Chat, streamed over /v1/chat/completions; the reasoning folded away.

const chat = { messages: [], controller: null, model: '' };

function chatEntry(role) {
  const reasoning = el('details', { class: 'reasoning', hidden: true },
    el('summary', { text: 'Reasoning' }), el('div', { class: 'reasoning-text' }));
  const content = el('div', { class: 'content' });
  const item = el('li', { class: 'turn turn-' + role },
    el('span', { class: 'who', text: role === 'user' ? 'You' : 'Model' }), reasoning, content);
  $('chat-log').append(item);
  item.scrollIntoView({ block: 'end' });
  return { item, reasoning, reasoningText: reasoning.querySelector('.reasoning-text'), content };
}

// Splits streamed text into reasoning and answer when the model writes its <think> block in
// the content (a server that does not separate it).
function splitThink(raw) {
  const open = raw.indexOf('<think>');
  if (open < 0) return { reasoning: '', content: raw };
  const close = raw.indexOf('</think>', open);
  if (close < 0) return { reasoning: raw.slice(open + 7), content: raw.slice(0, open) };
  return { reasoning: raw.slice(open + 7, close), content: raw.slice(0, open) + raw.slice(close + 8).replace(/^\s+/, '') };
}

async function sendChat(event) {
  event.preventDefault();
  const input = $('chat-input');
  const question = input.value.trim();
  if (!question || chat.controller) return;
  input.value = '';
  chat.messages.push({ role: 'user', content: question });
  chatEntry('user').content.textContent = question;
  const answer = chatEntry('assistant');
  answer.item.setAttribute('aria-busy', 'true');
  chat.controller = new AbortController();
  $('chat-send').disabled = true;
  $('chat-stop').disabled = false;
  let reasoning = '';
  let raw = '';
  const show = () => {
    const split = splitThink(raw);
    const thought = reasoning + split.reasoning;
    answer.reasoning.hidden = !thought;
    answer.reasoningText.textContent = thought;
    answer.content.textContent = split.content;
  };
  try {
    const response = await call('/v1/chat/completions', {
      method: 'POST',
      signal: chat.controller.signal,
      body: {
        messages: chat.messages,
        stream: true,
        max_tokens: Number($('chat-max-tokens') ? $('chat-max-tokens').value : 1024) || 1024,
        chat_template_kwargs: { enable_thinking: $('chat-thinking').checked },
      },
    });
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    // Read to the end of the body even after [DONE]: a body left unread is an aborted request.
    for (;;) {
      const chunk = await reader.read();
      if (chunk.done) break;
      buffer += chunk.value;
      let end;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const eventText = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        for (const line of eventText.split('\n')) {
          if (!line.startsWith('data: ')) continue;
          const data = line.slice(6);
          if (data === '[DONE]') {
            answer.item.dataset.complete = 'true';
            break;
          }
          const parsed = JSON.parse(data);
          if (parsed.error) throw new Error(parsed.error.message);
          const delta = parsed.choices && parsed.choices[0] ? parsed.choices[0].delta || {} : {};
          if (delta.reasoning_content) reasoning += delta.reasoning_content;
          if (delta.content) raw += delta.content;
          if (parsed.choices && parsed.choices[0] && parsed.choices[0].finish_reason === 'length')
            answer.item.dataset.finish = 'length';
        }
        show();
      }
    }
    chat.messages.push({ role: 'assistant', content: splitThink(raw).content });
    if (answer.item.dataset.finish === 'length') answer.item.append(el('p', { class: 'hint', text: 'Stopped at the token limit.' }));
  } catch (e) {
    if (e.name === 'AbortError') answer.item.append(el('p', { class: 'hint', text: 'Stopped.' }));
    else answer.item.append(el('p', { class: 'message', 'data-kind': 'error', text: 'Failed: ' + e.message }));
    chat.messages.pop();  // the question goes unanswered: ask it again later
  } finally {
    show();
    answer.item.removeAttribute('aria-busy');
    chat.controller = null;
    $('chat-send').disabled = false;
    $('chat-stop').disabled = true;
    input.focus();
  }
}

function setupChat() {
  $('chat-form').addEventListener('submit', sendChat);
  $('chat-input').addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && (event.ctrlKey || event.metaKey)) $('chat-form').requestSubmit();
  });
  $('chat-stop').addEventListener('click', () => chat.controller && chat.controller.abort());
  $('chat-clear').addEventListener('click', () => {
    if (chat.controller) chat.controller.abort();
    chat.messages = [];
    clear($('chat-log'));
    $('chat-input').focus();
  });
}

// ---------------------------------------------------------------------------------------------
// The ATT&CK knowledge base (GET /v1/kb/...), addressed by the page's hash: #kb/T1059.001,
// #kb/M1038, #kb?q=TEXT.

function notice(text) {
  $('kb-notice').textContent = text || '';
}

function renderTechnique(t) {
  const out = [el('h2', {}, el('span', { class: 'id-title', text: t.id }), ' ', t.name)];
  const dl = el('dl', { class: 'facts' });
  if (t.parent) fact(dl, 'Sub-technique of', el('span', {}, kbLink(t.parent.id), ' ', t.parent.name));
  fact(dl, 'Tactics', (t.tactics || []).map((x) => x.name).join(', '));
  fact(dl, 'Platforms', (t.platforms || []).join(', '));
  out.push(dl, el('div', { class: 'prose' }, paragraphs(t.description)));
  const strategy = t.detection_strategy;
  if (strategy) {
    out.push(el('h3', { text: 'Detection: ' + strategy.name }));
    if ((strategy.log_sources || []).length) out.push(el('p', { text: 'Log sources: ' + strategy.log_sources.join(', ') }));
    for (const a of strategy.analytics || []) out.push(el('div', { class: 'prose' }, paragraphs(a.description)));
  } else if (t.detection) {
    out.push(el('h3', { text: 'Detection' }), el('div', { class: 'prose' }, paragraphs(t.detection)));
  }
  out.push(el('h3', { text: `Mitigations (${(t.mitigations || []).length})` }));
  out.push(el('ul', { class: 'kb-list' }, (t.mitigations || []).map((m) =>
    el('li', {}, el('p', {}, kbLink(m.id), ' ', el('strong', { text: m.name })), el('p', { class: 'how', text: plainAttack(m.how) })))));
  return out;
}

function renderMitigation(m) {
  return [
    el('h2', {}, el('span', { class: 'id-title', text: m.id }), ' ', m.name),
    el('div', { class: 'prose' }, paragraphs(m.description)),
    el('h3', { text: `Techniques it mitigates (${(m.techniques || []).length})` }),
    el('ul', { class: 'kb-list' }, (m.techniques || []).map((t) =>
      el('li', {}, el('p', {}, kbLink(t.id), ' ', el('strong', { text: t.name })), el('p', { class: 'how', text: plainAttack(t.how) })))),
  ];
}

function renderSearch(answer) {
  if (!answer.results.length) return [el('p', { class: 'empty', text: `No technique matches “${answer.query}”.` })];
  return [el('h2', { text: `Techniques for “${answer.query}”` }),
    el('ol', { class: 'kb-results' }, answer.results.map((r) =>
      el('li', {}, kbLink(r.id), ' ', el('strong', { text: r.name }), el('small', { text: ' · ' + r.tactics.join(', ') }))))];
}

let kbRequest = 0;

async function showKb(hash) {
  showTab('kb');
  const result = clear($('kb-result'));
  const route = hash.replace(/^#kb\/?/, '');
  const request = ++kbRequest;
  let path = null;
  let render = null;
  if (route.startsWith('?q=')) {
    const q = decodeURIComponent(route.slice(3));
    $('kb-query').value = q;
    path = '/v1/kb/search?limit=20&q=' + encodeURIComponent(q);
    render = renderSearch;
  } else if (TECHNIQUE_ID.test(route)) {
    path = '/v1/kb/techniques/' + route;
    render = renderTechnique;
  } else if (MITIGATION_ID.test(route)) {
    path = '/v1/kb/mitigations/' + route;
    render = renderMitigation;
  }
  if (!path) {
    result.append(el('p', { class: 'empty', text: 'Search the ATT&CK techniques by words, or give an id.' }));
    return;
  }
  result.append(el('p', { class: 'message', 'data-kind': 'busy', text: 'Loading…' }));
  try {
    const answer = await getJson(path);
    if (request !== kbRequest) return;
    clear(result).append(...render(answer));
    notice(answer.notice);
    const heading = result.querySelector('h2');
    if (heading) {
      heading.tabIndex = -1;
      heading.focus();
    }
  } catch (e) {
    if (request !== kbRequest) return;
    clear(result).append(el('p', { class: 'message', 'data-kind': 'error', text: e.message }));
  }
}

function setupKb() {
  $('kb-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const q = $('kb-query').value.trim();
    if (!q) return;
    const id = q.toUpperCase();
    location.hash = TECHNIQUE_ID.test(id) || MITIGATION_ID.test(id) ? '#kb/' + id : '#kb?q=' + encodeURIComponent(q);
  });
  const route = () => {
    if (location.hash.startsWith('#kb')) showKb(location.hash);
  };
  window.addEventListener('hashchange', route);
  route();
}

// ---------------------------------------------------------------------------------------------

async function status() {
  const line = $('server-status');
  try {
    const models = await getJson('/v1/models');
    const model = models.data[0];
    chat.model = model.id;
    line.textContent = `${model.id} · context ${model.max_model_len}`;
    line.dataset.kind = 'ok';
  } catch (e) {
    line.textContent = 'server: ' + e.message;
    line.dataset.kind = 'error';
  }
}

document.addEventListener('DOMContentLoaded', () => {
  setupTabs();
  setupAlerts();
  setupChat();
  setupKb();
  status();
});
