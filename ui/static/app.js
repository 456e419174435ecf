// The page's only script. Every text that comes from a record or a server is put
// into the page with textContent, never as markup.
'use strict';

(function () {
  // The record types and their labels, in the order the UI service lists them
  // (GET /api/types, from its RECORD_TYPES and RECORD_TYPE_LABELS).
  const TYPES = new Map();
  // Where the newest consistency token the page holds is kept for read-your-writes,
  // per tab, and the seq of the last save (for people: the token is opaque).
  const TOKEN_KEY = 'cqrs.token';
  const SEQ_KEY = 'cqrs.lastSeq';
  const TOKEN_HEADER = 'X-Consistency-Token';
  // Fields the functions name in {"error","field"} answers, and the control each
  // one belongs to on this page.
  const ADD_FIELDS = { type: 'add-type', text: 'add-text', body: 'add-text' };
  const QUERY_FIELDS = { type: 'q-type', q: 'q-words', limit: 'q-limit', token: 'q-ryw', 'X-Consistency-Token': 'q-ryw', cursor: 'more' };

  const $ = (id) => document.getElementById(id);
  const el = (tag, cls, text) => {
    const n = document.createElement(tag);
    if (cls) n.className = cls;
    if (text !== undefined) n.textContent = text;
    return n;
  };

  let token = '';
  let lastSeq = 0;
  try {
    token = sessionStorage.getItem(TOKEN_KEY) || '';
    lastSeq = Number(sessionStorage.getItem(SEQ_KEY)) || 0;
  } catch (e) { /* storage off */ }
  // The Idempotency-Key of the save in progress. It is kept until a save gets a
  // definite answer (success), so that pressing Save again after an unknown outcome
  // (no answer, or "outcome unknown") cannot store the record twice; editing the
  // text or the type starts a new record and so a new key.
  let pendingKey = '';
  let lastParams = null;
  let nextCursor = '';
  let shown = 0;

  // A random Idempotency-Key per save: pressing Save again after a lost answer
  // cannot store the record twice. crypto.getRandomValues works on plain http too.
  function newKey() {
    const b = new Uint8Array(16);
    crypto.getRandomValues(b);
    return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
  }

  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  async function call(method, url, body, headers) {
    const opts = { method, headers: Object.assign({ Accept: 'application/json' }, headers || {}) };
    if (body !== undefined) {
      opts.headers['Content-Type'] = 'application/json';
      opts.body = JSON.stringify(body);
    }
    let resp;
    try {
      resp = await fetch(url, opts);
    } catch (e) {
      return { ok: false, status: 0, headers: new Headers(), data: { error: 'The UI service cannot be reached; check the connection and try again.' } };
    }
    let data = null;
    try { data = await resp.json(); } catch (e) { data = null; }
    if (!resp.ok && (!data || typeof data.error !== 'string')) {
      data = { error: 'The service answered ' + resp.status + (resp.statusText ? ' ' + resp.statusText : '') + '.' };
    }
    return { ok: resp.ok, status: resp.status, headers: resp.headers, data };
  }

  function labelOf(control) {
    const l = document.querySelector('label[for="' + control.id + '"]');
    return l ? l.textContent : control.id;
  }

  function clearErrors(box, fields) {
    box.hidden = true;
    box.textContent = '';
    for (const id of Object.values(fields)) {
      const c = $(id);
      if (c) c.removeAttribute('aria-invalid');
    }
  }

  // showError says what went wrong in words and, when the function named a field,
  // marks that control and moves the focus there.
  function showError(box, fields, data) {
    const field = typeof data.field === 'string' ? data.field : '';
    const control = field && fields[field] ? $(fields[field]) : null;
    let msg = data.error;
    if (control) {
      msg = 'Field "' + field + '" (' + labelOf(control) + '): ' + data.error;
      control.setAttribute('aria-invalid', 'true');
      control.setAttribute('aria-errormessage', box.id);
      control.focus();
    } else if (field) {
      msg = 'Field "' + field + '": ' + data.error;
    }
    box.textContent = msg;
    box.hidden = false;
  }

  function busy(form, button, on) {
    form.setAttribute('aria-busy', on ? 'true' : 'false');
    button.disabled = on;
  }

  function typeLabel(t) {
    return TYPES.has(t) ? TYPES.get(t) : String(t);
  }

  function option(value, label) {
    const o = el('option', '', label);
    o.value = value;
    return o;
  }

  // loadTypes fills both type selects from the UI service.
  async function loadTypes() {
    const res = await call('GET', '/api/types');
    const list = res.ok && res.data && Array.isArray(res.data.types) ? res.data.types : null;
    for (const id of ['add-type', 'q-type']) $(id).removeAttribute('aria-busy');
    if (!list) {
      const why = res.data && typeof res.data.error === 'string' ? res.data.error : 'the answer holds no types';
      showError($('add-error'), ADD_FIELDS, { error: 'Cannot load the record types: ' + why + ' Reload the page to try again.' });
      return;
    }
    for (const t of list) {
      if (!t || typeof t.name !== 'string' || typeof t.label !== 'string') continue;
      TYPES.set(t.name, t.label);
      $('add-type').append(option(t.name, t.label));
      $('q-type').append(option(t.name, t.label));
    }
  }

  function recordItem(rec) {
    const li = el('li', 'record');
    li.dataset.seq = String(rec.seq);
    const meta = el('div', 'meta');
    const tag = el('span', 'tag tag-' + String(rec.type).replace(/[^a-z0-9_-]/g, ''), typeLabel(rec.type));
    const time = el('time', 'when');
    const when = new Date(rec.createdAt);
    time.dateTime = rec.createdAt;
    time.textContent = isNaN(when) ? String(rec.createdAt) : when.toLocaleString();
    meta.append(tag, time, el('span', 'seq', 'seq ' + rec.seq));
    li.append(meta, el('p', 'text', rec.text));
    return li;
  }

  // atSeq is " at seq N" when the answer says how far its Redis had got (a store on
  // one master); a Redis Cluster has a seq per partition, and the answer none.
  function atSeq(headers) {
    const seq = headers.get('X-Replica-Seq');
    return seq === null ? '' : ' at seq ' + seq;
  }

  function servedBy(headers) {
    const by = headers.get('X-Served-By');
    if (!by) return '';
    return by === 'master' ? 'served by the master (fallback)' + atSeq(headers) : 'served by the replica' + atSeq(headers);
  }

  // rememberToken keeps the token of an answer to a request that sent the page's
  // token: the functions join the two, so it is the newest the page holds.
  function rememberToken(headers, seq) {
    const t = headers.get(TOKEN_HEADER);
    if (!t) return;
    token = t;
    if (seq > 0) lastSeq = seq;
    try {
      sessionStorage.setItem(TOKEN_KEY, token);
      sessionStorage.setItem(SEQ_KEY, String(lastSeq));
    } catch (e) { /* storage off */ }
  }

  function forgetToken() {
    token = '';
    lastSeq = 0;
    try {
      sessionStorage.removeItem(TOKEN_KEY);
      sessionStorage.removeItem(SEQ_KEY);
    } catch (e) { /* storage off */ }
  }

  // outcomeUnknown says whether a failed save may still have been stored: no
  // answer reached the page, the write function said "outcome unknown", or the UI
  // service lost or timed out waiting for the function's answer (502, 503, 504).
  // Sending the same Idempotency-Key again is safe in every case.
  function outcomeUnknown(res) {
    return res.status === 0 || res.status === 502 || res.status === 503 || res.status === 504 ||
      (res.data !== null && typeof res.data === 'object' && res.data.code === 'outcome_unknown');
  }

  function retryDelay(res) {
    const v = res.headers.get('Retry-After');
    const s = v === null ? 1 : Number(v);
    return Math.min(Number.isFinite(s) && s >= 0 ? s : 1, 5) * 1000;
  }

  // Save: the command goes to the write function; then the read side is asked at
  // once, without waiting, so the page shows honestly whether the replica has it.
  async function save(ev) {
    ev.preventDefault();
    const form = $('add-form');
    const button = $('save');
    clearErrors($('add-error'), ADD_FIELDS);
    $('saved').textContent = 'Saving…';
    $('replica').textContent = '';
    $('replica').className = '';
    busy(form, button, true);
    if (!pendingKey) pendingKey = newKey();
    const key = pendingKey;
    const cmd = { type: $('add-type').value, text: $('add-text').value };
    const headers = { 'Idempotency-Key': key };
    if (token) headers[TOKEN_HEADER] = token;
    let res = await call('POST', '/api/records', cmd, headers);
    if (!res.ok && staleToken(res)) {
      // The store was reset since the page's token: save without it.
      forgetToken();
      delete headers[TOKEN_HEADER];
      res = await call('POST', '/api/records', cmd, headers);
    }
    if (!res.ok && outcomeUnknown(res)) {
      // One automatic retry with the same key: it stores the record or, if the
      // first attempt did store it, answers with that record.
      $('saved').textContent = 'No definite answer; retrying once with the same Idempotency-Key…';
      await sleep(retryDelay(res));
      res = await call('POST', '/api/records', cmd, headers);
    }
    if (!res.ok) {
      busy(form, button, false);
      $('saved').textContent = '';
      const data = Object.assign({}, res.data);
      if (outcomeUnknown(res)) {
        data.error += ' The record may or may not be stored: press Save again to retry safely; it is stored at most once.';
      }
      showError($('add-error'), ADD_FIELDS, data);
      return;
    }
    if (pendingKey === key) pendingKey = '';
    const rec = res.data;
    rememberToken(res.headers, Number(rec.seq));
    let saved = 'Saved ' + typeLabel(rec.type) + ' as seq ' + rec.seq + ' on the master.';
    if (res.headers.get('Idempotent-Replayed') === 'true') saved += ' (A retry: the first attempt had stored it.)';
    const replicated = res.headers.get('X-Replicated');
    if (replicated === 'false') saved += ' Fewer replicas than asked confirmed it in time.';
    $('saved').textContent = saved;
    $('add-text').value = '';
    const check = await call('GET', '/api/records/' + encodeURIComponent(rec.id));
    busy(form, button, false);
    const by = check.headers.get('X-Served-By');
    const line = $('replica');
    if (check.ok && by === 'replica') {
      line.textContent = 'Read side: the replica already reflects it (' + servedBy(check.headers) + ').';
      line.className = 'fresh';
    } else if (check.ok) {
      line.textContent = 'Read side: the master answered, the replica did not have it yet (' + servedBy(check.headers) + ').';
    } else if (check.status === 404) {
      line.textContent = 'Read side: the replica does not have it yet (' + servedBy(check.headers) + '). Tick "Read your writes" to make searches wait for it.';
    } else {
      line.textContent = 'Read side: could not ask it: ' + check.data.error;
    }
  }

  function queryParams() {
    const p = new URLSearchParams();
    const type = $('q-type').value;
    const words = $('q-words').value.trim();
    if (type) p.set('type', type);
    if (words) p.set('q', words);
    p.set('limit', $('q-limit').value);
    if ($('q-ryw').checked && token) p.set('token', token);
    return p;
  }

  // staleToken says whether a function refused the page's token: one of a history of
  // the store that is gone (410 store_reset: the store was emptied), or beyond the
  // newest record (400 naming the token: writes lost in a failover). Either way the
  // token means nothing to the store as it is now.
  function staleToken(res) {
    const d = res.data;
    return d !== null && typeof d === 'object' && (d.code === 'store_reset' ||
      (res.status === 400 && (d.field === 'token' || d.field === TOKEN_HEADER)));
  }

  // Search runs a new query; more follows nextCursor with the same query.
  async function search(more) {
    const form = $('query-form');
    const button = more ? $('more') : $('search');
    clearErrors($('query-error'), QUERY_FIELDS);
    const params = more ? new URLSearchParams(lastParams) : queryParams();
    if (more) params.set('cursor', nextCursor);
    $('query-status').textContent = more ? 'Loading more…' : 'Searching…';
    busy(form, button, true);
    let res = await call('GET', '/api/records?' + params.toString());
    let note = '';
    const sent = params.get('token');
    if (sent !== null && staleToken(res)) {
      // The store was reset or lost writes since the page's token: it means
      // nothing there. Forget it and ask again without it.
      forgetToken();
      params.delete('token');
      if (more) params.delete('cursor');
      note = 'read your writes: the store was reset since your last save, so the page forgot it';
      res = await call('GET', '/api/records?' + params.toString());
    } else if (sent !== null) {
      rememberToken(res.headers, 0);
      note = 'read your writes: waited for your last save' + (lastSeq > 0 ? ' (seq ' + lastSeq + ')' : '');
    }
    busy(form, button, false);
    if (!res.ok) {
      $('query-status').textContent = note ? note + '.' : '';
      showError($('query-error'), QUERY_FIELDS, res.data);
      return;
    }
    const list = $('results');
    if (!more) {
      lastParams = params;
      list.replaceChildren();
      shown = 0;
    }
    const records = Array.isArray(res.data.records) ? res.data.records : [];
    for (const rec of records) list.append(recordItem(rec));
    shown += records.length;
    nextCursor = typeof res.data.nextCursor === 'string' ? res.data.nextCursor : '';
    $('more').hidden = !nextCursor;
    let status = (shown === 0 ? 'No records' : shown + (shown === 1 ? ' record' : ' records') + ', newest first');
    const served = servedBy(res.headers);
    if (served) status += '; ' + served;
    if (note) status += '; ' + note;
    $('query-status').textContent = status + '.';
  }

  function start() {
    $('add-form').addEventListener('submit', save);
    $('add-text').addEventListener('input', () => { pendingKey = ''; });
    $('add-type').addEventListener('change', () => { pendingKey = ''; });
    $('query-form').addEventListener('submit', (ev) => { ev.preventDefault(); search(false); });
    $('more').addEventListener('click', () => search(true));
    loadTypes();
    // Ctrl+Enter saves from the text area, as Enter searches from the words box.
    $('add-text').addEventListener('keydown', (ev) => {
      if (ev.key === 'Enter' && (ev.ctrlKey || ev.metaKey)) {
        ev.preventDefault();
        $('add-form').requestSubmit();
      }
    });
    search(false);
  }

  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', start);
  } else {
    start();
  }
})();
