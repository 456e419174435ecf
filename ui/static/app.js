// The page's only script. Every text that comes from a record or a server is put
// into the page with textContent, never as markup.
'use strict';

(function () {
  const TYPES = { bp: 'Blog post', cmt: 'Comment', rvw: 'Review' };
  // Fields the functions name in {"error","field"} answers, and the control each
  // one belongs to on this page.
  const ADD_FIELDS = { type: 'add-type', text: 'add-text', body: 'add-text' };
  const QUERY_FIELDS = { type: 'q-type', q: 'q-words', limit: 'q-limit', minSeq: 'q-ryw', 'X-Min-Seq': 'q-ryw', cursor: 'more' };

  const $ = (id) => document.getElementById(id);
  const el = (tag, cls, text) => {
    const n = document.createElement(tag);
    if (cls) n.className = cls;
    if (text !== undefined) n.textContent = text;
    return n;
  };

  let lastSeq = 0;
  try { lastSeq = Number(sessionStorage.getItem('cqrs.lastSeq')) || 0; } catch (e) { /* storage off */ }
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
    return Object.prototype.hasOwnProperty.call(TYPES, t) ? TYPES[t] : t;
  }

  function recordItem(rec) {
    const li = el('li', 'record');
    li.dataset.seq = String(rec.seq);
    const meta = el('div', 'meta');
    const tag = el('span', 'tag tag-' + (Object.prototype.hasOwnProperty.call(TYPES, rec.type) ? rec.type : 'other'), typeLabel(rec.type));
    const time = el('time', 'when');
    const when = new Date(rec.createdAt);
    time.dateTime = rec.createdAt;
    time.textContent = isNaN(when) ? String(rec.createdAt) : when.toLocaleString();
    meta.append(tag, time, el('span', 'seq', 'seq ' + rec.seq));
    li.append(meta, el('p', 'text', rec.text));
    return li;
  }

  function servedBy(headers) {
    const by = headers.get('X-Served-By');
    const seq = headers.get('X-Replica-Seq');
    if (!by) return '';
    return by === 'master' ? 'served by the master (fallback) at seq ' + seq : 'served by the replica at seq ' + seq;
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
    const res = await call('POST', '/api/records', { type: $('add-type').value, text: $('add-text').value }, { 'Idempotency-Key': pendingKey });
    if (!res.ok) {
      busy(form, button, false);
      $('saved').textContent = '';
      showError($('add-error'), ADD_FIELDS, res.data);
      return;
    }
    pendingKey = '';
    const rec = res.data;
    lastSeq = Math.max(lastSeq, Number(rec.seq) || 0);
    try { sessionStorage.setItem('cqrs.lastSeq', String(lastSeq)); } catch (e) { /* storage off */ }
    let saved = 'Saved ' + typeLabel(rec.type) + ' as seq ' + rec.seq + ' on the master.';
    const replicated = res.headers.get('X-Replicated');
    if (replicated === 'false') saved += ' Fewer replicas than asked confirmed it in time.';
    $('saved').textContent = saved;
    $('add-text').value = '';
    const check = await call('GET', '/api/records/' + encodeURIComponent(rec.id));
    busy(form, button, false);
    const replicaSeq = check.headers.get('X-Replica-Seq');
    const by = check.headers.get('X-Served-By');
    const line = $('replica');
    if (check.ok && by === 'replica') {
      line.textContent = 'Read side: the replica already reflects it (replica at seq ' + replicaSeq + ').';
      line.className = 'fresh';
    } else if (check.ok) {
      line.textContent = 'Read side: the master answered, the replica did not have it yet (' + servedBy(check.headers) + ').';
    } else if (check.status === 404) {
      line.textContent = 'Read side: the replica does not have it yet (replica at seq ' + replicaSeq + '). Tick "Read your writes" to make searches wait for it.';
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
    if ($('q-ryw').checked && lastSeq > 0) p.set('minSeq', String(lastSeq));
    return p;
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
    const res = await call('GET', '/api/records?' + params.toString());
    busy(form, button, false);
    if (!res.ok) {
      $('query-status').textContent = '';
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
    if (params.has('minSeq')) status += '; read your writes: waited for seq ' + params.get('minSeq');
    $('query-status').textContent = status + '.';
  }

  function start() {
    $('add-form').addEventListener('submit', save);
    $('add-text').addEventListener('input', () => { pendingKey = ''; });
    $('add-type').addEventListener('change', () => { pendingKey = ''; });
    $('query-form').addEventListener('submit', (ev) => { ev.preventDefault(); search(false); });
    $('more').addEventListener('click', () => search(true));
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
