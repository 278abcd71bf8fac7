// Craton's web page: the runs of a project and one run's live progress.
//
// Hand-written, no framework and no build step: the daemon embeds this file
// as it is. Everything comes from the /v1 API with the token the user typed
// in (kept in sessionStorage, so it dies with the tab). EventSource cannot
// send an Authorization header, so the event stream is read with fetch()
// and parsed here. A run of 5,000 hosts sends tens of thousands of events:
// an event only updates a host's record and marks it dirty, and the DOM is
// touched once per animation frame for the dirty rows and the counters.
'use strict';

(() => {
  const $ = (id) => document.getElementById(id);
  const TOKEN_KEY = 'craton.token';
  const PROJECT_KEY = 'craton.project';
  // Display order of host statuses, in the bar and the counters. The
  // daemon stores all but `running` (a host executing a task right now,
  // which only the event stream tells); `not_run` is a host of the target
  // that Ansible never reported on, and the run's `counts.hosts` leaves out.
  const STATUSES = ['ok', 'changed', 'failed', 'unreachable', 'skipped', 'running', 'pending', 'not_run'];
  const FINISHED = new Set(['successful', 'failed', 'canceled', 'error', 'lost', 'skipped']);
  const STDOUT_TAIL = 8192;

  // ---------- session ----------

  const session = {
    get token() { return sessionStorage.getItem(TOKEN_KEY) || ''; },
    get project() { return sessionStorage.getItem(PROJECT_KEY) || ''; },
    set(token, project) {
      sessionStorage.setItem(TOKEN_KEY, token);
      if (project) sessionStorage.setItem(PROJECT_KEY, project);
      else sessionStorage.removeItem(PROJECT_KEY);
    },
    clear() {
      sessionStorage.removeItem(TOKEN_KEY);
      sessionStorage.removeItem(PROJECT_KEY);
    },
  };

  class HttpError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  // A root token names its project with ?project=; links the API returns
  // already carry it.
  function withProject(path) {
    const p = session.project;
    if (!p || /[?&]project=/.test(path)) return path;
    return path + (path.includes('?') ? '&' : '?') + 'project=' + encodeURIComponent(p);
  }

  function authHeaders(extra) {
    return Object.assign({ Authorization: 'Bearer ' + session.token }, extra || {});
  }

  async function errorOf(resp) {
    let message = resp.status + ' ' + resp.statusText;
    try {
      const body = await resp.json();
      if (body && body.error && body.error.message) message = body.error.message;
    } catch (_) { /* not JSON */ }
    return new HttpError(resp.status, message);
  }

  async function api(path, opts) {
    opts = opts || {};
    const headers = { Accept: opts.text ? 'text/plain' : 'application/json' };
    if (opts.json !== undefined) headers['Content-Type'] = 'application/json';
    const resp = await fetch(withProject(path), {
      method: opts.method || 'GET',
      headers: authHeaders(headers),
      body: opts.json === undefined ? undefined : JSON.stringify(opts.json),
      cache: 'no-store',
      signal: opts.signal,
    });
    if (resp.status === 401) {
      const e = await errorOf(resp);
      loggedOut('Token refused: ' + e.message);
      throw e;
    }
    if (!resp.ok) throw await errorOf(resp);
    return opts.text ? resp.text() : resp.json();
  }

  // Every page of a list (items + links.next), or a plain array.
  async function apiAll(path, signal) {
    const items = [];
    for (let next = path, guard = 0; next && guard < 1000; guard++) {
      const page = await api(next, { signal });
      if (Array.isArray(page)) return page;
      items.push(...(page.items || []));
      next = page.links && page.links.next;
    }
    return items;
  }

  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  const isAbort = (e) => e && e.name === 'AbortError';

  // ---------- small DOM helpers ----------

  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null) continue;
      if (k === 'class') e.className = v;
      else if (k === 'text') e.textContent = v;
      else e.setAttribute(k, v);
    }
    for (const c of children) e.append(c);
    return e;
  }

  function flash(msg) {
    const f = $('flash');
    f.textContent = msg || '';
    f.hidden = !msg;
  }

  function show(view) {
    for (const v of document.querySelectorAll('.view')) v.hidden = v.id !== view;
    const logged = !!session.token;
    $('logout').hidden = !logged;
    $('whoami').textContent = logged ? (session.project ? 'project ' + session.project : '') : '';
  }

  const pad = (n) => String(n).padStart(2, '0');
  function fmtTime(ms) {
    if (ms === null || ms === undefined) return '';
    const d = new Date(ms);
    return d.getFullYear() + '-' + pad(d.getMonth() + 1) + '-' + pad(d.getDate()) + ' ' +
      pad(d.getHours()) + ':' + pad(d.getMinutes()) + ':' + pad(d.getSeconds());
  }
  function fmtDuration(run) {
    if (!run.started_at) return '';
    const end = run.finished_at || Date.now();
    let s = Math.max(0, Math.round((end - run.started_at) / 1000));
    const h = Math.floor(s / 3600); s -= h * 3600;
    const m = Math.floor(s / 60); s -= m * 60;
    return (h ? h + 'h' : '') + (h || m ? pad(m) + 'm' + pad(s) : String(s)) + 's';
  }
  function fmtTarget(t) {
    if (!t) return '';
    let s = t.group || 'all';
    const f = Array.isArray(t.filter) ? t.filter.join(', ') : t.filter;
    if (f) s += ' filter ' + (typeof f === 'string' ? f : JSON.stringify(f));
    if (t.limit) s += ' limit ' + t.limit;
    return s;
  }
  // Why a queued run waits (`waiting_for` of the run JSON): another run on
  // its hosts, a free slot of the project, its maintenance window, or
  // whatever a newer daemon names (shown as it comes).
  function fmtWaiting(w) {
    if (!w || typeof w !== 'object') return '';
    if (w.run !== undefined) return 'run #' + w.run + ' (its hosts)';
    if (w.after) {
      const runs = (w.after.runs || []).map((r) => '#' + r).join(', ');
      return 'run' + ((w.after.runs || []).length === 1 ? ' ' : 's ') + runs + ' to end' +
        (w.after.require === 'success' ? ' successfully' : '');
    }
    if (w.approval) {
      const by = w.approval.requested_by ? ' (submitted by ' + w.approval.requested_by + ')' : '';
      const until = w.approval.expires_at ? ', until ' + fmtTime(w.approval.expires_at) : '';
      return 'approval by an admin' + by + until;
    }
    if (w.batch_approval) {
      const by = w.batch_approval.requested_by ? ' (submitted by ' + w.batch_approval.requested_by + ')' : '';
      return 'approval of batch ' + w.batch_approval.seq + ' by an admin' + by;
    }
    if (w.concurrency) {
      const c = w.concurrency;
      return 'a free slot (' + (c.running || []).length + ' of ' + c.max + ' running)';
    }
    if (w.window) {
      const opens = Date.parse(w.window.opens_at);
      return 'window at ' + (isNaN(opens) ? String(w.window.opens_at) : fmtTime(opens));
    }
    return Object.keys(w).map((k) => k + (w[k] === true ? '' : ' ' + JSON.stringify(w[k]))).join(', ');
  }
  const countOf = (run, k) => (run.counts && run.counts[k] !== undefined && run.counts[k] !== null ? run.counts[k] : 0);

  // ---------- routing ----------

  let current = null; // the shown view: { stop() }

  function route() {
    if (current) { current.stop(); current = null; }
    flash('');
    if (!session.token) { loginView(); return; }
    const m = /^#\/runs\/(\d+)$/.exec(location.hash);
    if (m) current = runView(Number(m[1]));
    else if (location.hash !== '#/runs') location.hash = '#/runs'; // routes again
    else current = runsView();
  }

  function loggedOut(msg) {
    session.clear();
    if (current) { current.stop(); current = null; }
    loginView(msg);
  }

  // ---------- login ----------

  function loginView(msg) {
    show('view-login');
    const err = $('login-error');
    err.textContent = msg || '';
    err.hidden = !msg;
    $('login-token').focus();
  }

  async function onLogin(ev) {
    ev.preventDefault();
    const token = $('login-token').value.trim();
    const project = $('login-project').value.trim();
    const err = $('login-error');
    if (!token) return;
    session.set(token, project);
    try {
      // Any cheap call that needs the token and the project.
      await api('/v1/runs?limit=1');
    } catch (e) {
      session.clear();
      err.textContent = 'Login failed: ' + e.message;
      err.hidden = false;
      return;
    }
    $('login-token').value = '';
    err.hidden = true;
    if (!location.hash || location.hash === '#/login') location.hash = '#/runs';
    else route();
  }

  // ---------- #/runs ----------

  function runsView() {
    show('view-runs');
    // No rows of an earlier visit: what is shown is what was just read.
    $('runs-body').replaceChildren();
    const ctrl = new AbortController();
    let stopped = false;
    let timer = null;
    let marker = null; // the page shown: null = newest
    let links = {};

    const markerOf = (link) => {
      if (!link) return undefined;
      return new URL(link, location.origin).searchParams.get('marker');
    };

    function render(page) {
      const body = $('runs-body');
      const rows = document.createDocumentFragment();
      for (const run of page.items || []) {
        const done = FINISHED.has(run.status);
        rows.append(el('tr', { 'data-run': String(run.id), 'data-status': run.status },
          el('td', {}, el('a', { href: '#/runs/' + run.id, text: String(run.id) })),
          el('td', {}, el('span', { class: 'badge st-' + run.status, text: run.status })),
          el('td', { text: run.playbook || '' }),
          el('td', { text: fmtTarget(run.target) }),
          el('td', { 'data-col': 'waiting', text: run.status === 'queued' ? fmtWaiting(run.waiting_for) : '' }),
          el('td', { class: 'num', 'data-col': 'hosts', text: String(countOf(run, 'hosts')) }),
          el('td', { class: 'num c-ok', 'data-col': 'ok', text: String(countOf(run, 'ok')) }),
          el('td', { class: 'num c-changed', 'data-col': 'changed', text: String(countOf(run, 'changed')) }),
          el('td', { class: 'num c-failed', 'data-col': 'failed', text: String(countOf(run, 'failed')) }),
          el('td', { class: 'num c-unreachable', 'data-col': 'unreachable', text: String(countOf(run, 'unreachable')) }),
          el('td', { class: 'num c-running', 'data-col': 'running', text: done ? '' : String(countOf(run, 'running')) }),
          el('td', { text: fmtTime(run.created_at) }),
          el('td', { text: fmtTime(run.started_at) }),
          el('td', { text: fmtDuration(run) })));
      }
      body.replaceChildren(rows);
      $('runs-empty').hidden = (page.items || []).length > 0;
      links = page.links || {};
      $('runs-next').hidden = !links.next;
      $('runs-prev').hidden = !links.prev;
      $('runs-updated').textContent = 'updated ' + fmtTime(Date.now());
    }

    // The project's windows, soonest first: when queued runs may start.
    function renderWindows(list) {
      const rows = (list.windows || []).map((w) => el('tr', { 'data-window': String(w.id), 'data-open': String(w.open_now) },
        el('td', { text: w.name }),
        el('td', { text: (w.group && w.group.name) || '' }),
        el('td', { 'data-col': 'opens', text: w.open_now ? 'open now' : (w.opens_at ? fmtTime(Date.parse(w.opens_at)) : 'never') }),
        el('td', { 'data-col': 'closes', text: w.closes_at ? fmtTime(Date.parse(w.closes_at)) : '' }),
        el('td', { class: 'small', text: w.kind + ' ' + w.expression + ' (' + w.time_zone + ', ' + w.duration_s + ' s)' })));
      $('windows-body').replaceChildren(...rows);
      $('windows').hidden = rows.length === 0;
    }

    async function load() {
      clearTimeout(timer);
      try {
        const q = '/v1/runs?limit=50' + (marker ? '&marker=' + encodeURIComponent(marker) : '');
        const [page, windows] = await Promise.all([api(q, { signal: ctrl.signal }), api('/v1/windows', { signal: ctrl.signal })]);
        render(page);
        renderWindows(windows);
        flash('');
      } catch (e) {
        if (stopped || isAbort(e)) return;
        if (e.status !== 401) flash('Could not list runs: ' + e.message);
      }
      if (!stopped) timer = setTimeout(load, 3000);
    }

    const next = () => { marker = markerOf(links.next) || null; load(); };
    const prev = () => { marker = markerOf(links.prev) || null; load(); };
    $('runs-next').addEventListener('click', next);
    $('runs-prev').addEventListener('click', prev);
    load();
    return {
      stop() {
        stopped = true;
        clearTimeout(timer);
        ctrl.abort();
        $('runs-next').removeEventListener('click', next);
        $('runs-prev').removeEventListener('click', prev);
      },
    };
  }

  // ---------- #/runs/ID ----------

  // What the events say about one host so far. `best` only rises
  // (pending < skipped < ok < changed); failed and unreachable are final
  // for the play, as ansible takes the host out of it.
  const RANK = { pending: 0, skipped: 1, ok: 2, changed: 3 };

  // As the daemon reads the recap (craton::runs::HostStatus::from_recap).
  function statusFromStats(s) {
    if (s.unreachable > 0) return 'unreachable';
    if (s.failures > 0) return 'failed';
    if (s.changed > 0) return 'changed';
    if (s.ok > 0 || s.rescued > 0 || s.ignored > 0) return 'ok';
    return 'skipped';
  }

  function runView(id) {
    show('view-run');
    const ctrl = new AbortController();
    let stopped = false;
    let run = null;
    let ended = false;
    let lastEventId = null;
    let stdoutTimer = null;
    let tickTimer = null;
    let lastStdout = null;

    const hosts = new Map(); // name -> host record
    const order = []; // names in row order
    const counts = Object.fromEntries(STATUSES.map((s) => [s, 0]));
    const dirty = new Set();
    let countsDirty = true;
    let frame = 0;
    let task = '';
    const playHosts = new Map(); // play uuid -> Set of host names seen in it
    let play = null;
    let sawStart = false;
    let streamCtrl = null; // the current connection of the event stream
    let dropped = false; // dropStream() cut the connection on purpose
    let connects = 0;

    $('run-id').textContent = '#' + id;
    $('run-status').textContent = '';
    $('run-meta').replaceChildren();
    $('run-actions').hidden = true;
    // The approval gate's answer (the API refuses the submitter and
    // non-admins; the page shows what it says).
    const answer = (what) => async () => {
      for (const b of ['run-approve', 'run-deny']) $(b).disabled = true;
      try {
        renderRun(await api('/v1/runs/' + id + '/' + what, { method: 'POST', json: {}, signal: ctrl.signal }));
      } catch (e) {
        if (!stopped && !isAbort(e)) flash('Could not ' + what + ' run #' + id + ': ' + e.message);
      } finally {
        for (const b of ['run-approve', 'run-deny']) $(b).disabled = false;
      }
    };
    $('run-approve').onclick = answer('approve');
    $('run-deny').onclick = answer('deny');
    $('run-batches').hidden = true;
    $('run-batches-body').replaceChildren();
    $('run-resume').hidden = true;
    $('run-resume').onclick = async () => {
      $('run-resume').disabled = true;
      try {
        const r = await api('/v1/runs/' + id + '/resume', { method: 'POST', json: {}, signal: ctrl.signal });
        location.hash = '#/runs/' + r.id;
      } catch (e) {
        if (!stopped && !isAbort(e)) flash('Could not resume run #' + id + ': ' + e.message);
      } finally {
        $('run-resume').disabled = false;
      }
    };
    $('hosts-body').replaceChildren();
    $('stdout').textContent = '';
    $('run-task').textContent = '';
    $('host-filter').value = '';
    setStream('connecting');

    function setStream(state) {
      const s = $('run-stream');
      s.dataset.stream = state;
      s.textContent = state === 'live' ? '● live' : state === 'ended' ? '' : state;
    }

    function host(name) {
      let h = hosts.get(name);
      if (!h) {
        h = { name, status: 'pending', derived: null, best: 'pending', final: null, active: false, task: '', row: null };
        hosts.set(name, h);
        order.push(name);
        counts.pending++;
        countsDirty = true;
      }
      return h;
    }

    function setStatus(h, status) {
      if (h.status === status) return;
      if (!(status in counts)) counts[status] = 0; // a status newer than this page
      counts[h.status]--;
      counts[status]++;
      h.status = status;
      countsDirty = true;
    }

    // The display status the event-derived state implies.
    function derive(h) {
      const s = h.final || (h.active ? 'running' : h.best);
      h.derived = s;
      setStatus(h, s);
      touch(h);
    }

    function touch(h) {
      dirty.add(h);
      schedule();
    }

    function schedule() {
      if (!frame) frame = requestAnimationFrame(paint);
    }

    // ---- events -> state ----

    function onEvent(e) {
      if (e.play_uuid && e.play_uuid !== play) {
        play = e.play_uuid;
        if (!playHosts.has(play)) playHosts.set(play, new Set());
      }
      switch (e.event) {
        case 'playbook_on_play_start':
          task = 'play ' + (e.play || '');
          countsDirty = true;
          schedule();
          return;
        case 'playbook_on_task_start':
        case 'playbook_on_handler_task_start': {
          task = e.task || '';
          countsDirty = true;
          // Hosts already seen in this play run this task too (until their
          // result says otherwise); the callback's runner_on_start, when
          // sent, marks each one exactly.
          const seen = sawStart ? null : playHosts.get(e.play_uuid || play);
          if (seen) {
            for (const name of seen) {
              const h = hosts.get(name);
              if (!h || h.final) continue;
              h.active = true;
              h.task = task;
              derive(h);
            }
          }
          schedule();
          return;
        }
        case 'playbook_on_stats': {
          for (const [name, s] of Object.entries(e.stats || {})) {
            const h = host(name);
            // What the task events alone said, kept beside the recap's word.
            h.live = h.final || h.best;
            h.active = false;
            h.final = statusFromStats(s);
            h.stats = s;
            derive(h);
          }
          // Hosts the recap does not name were never run.
          for (const h of hosts.values()) {
            if (!h.final && h.best === 'pending' && !(h.name in (e.stats || {}))) {
              h.active = false;
              h.final = 'not_run';
              derive(h);
            }
          }
          task = 'recap';
          countsDirty = true;
          schedule();
          return;
        }
        default:
      }
      if (!e.host) return;
      const h = host(e.host);
      if (e.play_uuid) {
        if (!playHosts.has(e.play_uuid)) playHosts.set(e.play_uuid, new Set());
        playHosts.get(e.play_uuid).add(e.host);
      }
      if (e.task) h.task = e.task;
      const rise = (s) => { if (RANK[s] > RANK[h.best]) h.best = s; };
      switch (e.event) {
        case 'runner_on_start':
          sawStart = true;
          h.active = true;
          break;
        case 'runner_on_ok':
          h.active = false;
          rise(e.changed ? 'changed' : 'ok');
          break;
        case 'runner_on_failed':
          h.active = false;
          if (e.ignore_errors) rise('ok');
          else h.final = 'failed';
          break;
        case 'runner_on_unreachable':
          h.active = false;
          h.final = 'unreachable';
          break;
        case 'runner_on_skipped':
          h.active = false;
          rise('skipped');
          break;
        case 'runner_retry':
          h.task = (e.task || h.task) + ' (retrying)';
          break;
        default:
          // runner_item_on_*: the task's own result follows.
          break;
      }
      derive(h);
    }

    // ---- state -> DOM, once per frame ----

    // Rows are divs, not table rows: a table lays out all 5,000 rows again
    // when one cell changes, while these skip rendering off screen
    // (content-visibility in app.css).
    function rowOf(h) {
      const row = el('div', { class: 'hrow', role: 'row', 'data-host': h.name },
        el('span', { class: 'host', role: 'cell', text: h.name }),
        el('span', { role: 'cell' }, el('span', { class: 'st' })),
        el('span', { class: 'task', role: 'cell' }));
      h.row = row;
      return row;
    }

    function paintRow(h) {
      const row = h.row;
      if (row.dataset.status !== h.status) {
        row.dataset.status = h.status;
        const st = row.children[1].firstChild;
        st.textContent = h.status.replace('_', ' ');
        st.className = 'st st-' + h.status;
      }
      if (h.derived && row.dataset.derived !== h.derived) row.dataset.derived = h.derived;
      if (h.live && row.dataset.live !== h.live) row.dataset.live = h.live;
      const cell = row.children[2];
      if (cell.textContent !== h.task) cell.textContent = h.task;
    }

    // Paints now rather than next frame: before saying the run ended.
    function paintNow() {
      if (frame) cancelAnimationFrame(frame);
      paint();
    }

    function paint() {
      frame = 0;
      if (dirty.size) {
        const fresh = document.createDocumentFragment();
        const filter = $('host-filter').value.trim();
        for (const h of dirty) {
          if (!h.row) {
            fresh.append(rowOf(h));
            if (filter) h.row.hidden = !h.name.includes(filter);
          }
          paintRow(h);
        }
        dirty.clear();
        if (fresh.childNodes.length) $('hosts-body').append(fresh);
      }
      if (countsDirty) {
        countsDirty = false;
        // Rows, and hosts the run names that no row has yet (pending).
        const total = Math.max(hosts.size, run ? countOf(run, 'hosts') + counts.not_run : 0);
        const unseen = Math.max(0, total - hosts.size);
        const progress = $('progress');
        progress.querySelector('[data-count="hosts"]').textContent = String(total - counts.not_run);
        for (const s of STATUSES) {
          const n = counts[s] + (s === 'pending' ? unseen : 0);
          const box = progress.querySelector('[data-count="' + s + '"]');
          box.textContent = String(n);
          if (s === 'not_run') box.parentElement.hidden = n === 0;
          const seg = progress.querySelector('[data-seg="' + s + '"]');
          // CSSOM, which the CSP allows (style attributes it would not).
          seg.style.width = total ? (100 * n / total).toFixed(3) + '%' : '0';
          seg.title = s + ': ' + n;
        }
        progress.dataset.snapshot = STATUSES.map((s) => s + '=' + counts[s]).join(' ');
        $('run-task').textContent = ended || !task ? '' : 'now: ' + task;
      }
    }

    // ---- the run's own fields ----

    function renderRun(r) {
      run = r;
      const badge = $('run-status');
      badge.textContent = r.status;
      badge.className = 'badge st-' + r.status;
      badge.dataset.status = r.status;
      const src = r.source || {};
      const rows = [
        ['playbook', r.playbook],
        ['source', src.config_ref ? 'config ref ' + src.config_ref
          : (src.repo || '') + (src.ref ? ' @ ' + src.ref : '') + (src.commit ? ' (' + String(src.commit).slice(0, 12) + ')' : '')],
        ['target', fmtTarget(r.target)],
        ['waiting for', r.status === 'queued' || r.status === 'running' ? fmtWaiting(r.waiting_for) : ''],
        ['created', fmtTime(r.created_at) + (r.created_by ? ' by ' + r.created_by : '')],
        ['started', fmtTime(r.started_at)],
        ['finished', fmtTime(r.finished_at)],
        ['duration', fmtDuration(r)],
        ['rc', r.rc === null || r.rc === undefined ? '' : String(r.rc)],
        ['reason', r.reason || ''],
        ['events', r.events ? r.events.received + (r.events.lost ? ' (some lost)' : '') : ''],
      ];
      const dl = document.createDocumentFragment();
      for (const [k, v] of rows) {
        if (!v) continue;
        dl.append(el('div', { class: 'kv' }, el('dt', { text: k }), el('dd', { 'data-field': k, text: v })));
      }
      $('run-meta').replaceChildren(dl);
      const w = r.waiting_for || {};
      $('run-actions').hidden = !((r.status === 'queued' && w.approval) || (r.status === 'running' && w.batch_approval));
      countsDirty = true;
      schedule();
    }

    // ---- a rollout's batches (read with the stdout tail) ----

    async function loadBatches() {
      if (!run || !run.options || !run.options.batch) return;
      let b;
      try {
        b = await api('/v1/runs/' + id + '/batches', { signal: ctrl.signal });
      } catch (e) {
        if (!stopped && !isAbort(e)) flash('Could not read the batches: ' + e.message);
        return;
      }
      const rows = b.batches.map((x) => el('tr', { 'data-seq': String(x.seq), 'data-status': x.status },
        el('td', { text: String(x.seq) }),
        el('td', {}, el('span', { class: 'badge st-' + x.status, text: x.status })),
        el('td', { text: x.hosts.join(', ') }),
        el('td', { text: String(x.failed) }),
        el('td', { text: x.reason || '' })));
      $('run-batches-body').replaceChildren(...rows);
      $('run-batches').hidden = rows.length === 0;
      const note = [];
      if (b.resumed_from) note.push('resumes #' + b.resumed_from);
      if (b.resumed_by) note.push('resumed by #' + b.resumed_by);
      $('run-batches-note').textContent = note.join(', ');
      const left = b.batches.some((x) => x.status === 'skipped' || x.status === 'stopped');
      const final = run.status !== 'queued' && run.status !== 'running';
      $('run-resume').hidden = !(final && left && !b.resumed_by);
    }

    // ---- stdout tail ----

    async function pollStdout() {
      clearTimeout(stdoutTimer);
      loadBatches();
      try {
        const text = await api('/v1/runs/' + id + '/stdout?tail=' + STDOUT_TAIL, { text: true, signal: ctrl.signal });
        if (text !== lastStdout) {
          lastStdout = text;
          const pre = $('stdout');
          const atBottom = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
          pre.textContent = text;
          if (atBottom) pre.scrollTop = pre.scrollHeight;
        }
      } catch (e) {
        if (stopped || isAbort(e)) return;
      }
      if (!stopped && !ended) stdoutTimer = setTimeout(pollStdout, 2000);
    }

    // ---- the end ----

    // The recap is the truth: the hosts as the daemon stored them replace
    // what the page derived (kept in data-derived for comparison).
    async function finish(r) {
      if (ended) return;
      ended = true;
      renderRun(r);
      setStream('ended');
      try {
        const list = await apiAll('/v1/runs/' + id + '/hosts', ctrl.signal);
        applyHosts(list);
        renderRun(await api('/v1/runs/' + id, { signal: ctrl.signal }));
      } catch (e) {
        if (!stopped && !isAbort(e)) flash('Could not read the final hosts: ' + e.message);
      }
      await pollStdout();
      paintNow();
      document.body.dataset.runEnded = String(id);
    }

    function applyHosts(list) {
      for (const x of list) {
        const h = host(x.host);
        if (x.task) h.task = x.task;
        h.stats = x;
        setStatus(h, x.status);
        touch(h);
      }
    }

    // ---- the event stream ----

    async function stream() {
      let backoff = 500;
      while (!stopped && !ended) {
        try {
          const headers = authHeaders({ Accept: 'text/event-stream' });
          if (lastEventId !== null) headers['Last-Event-ID'] = String(lastEventId);
          streamCtrl = new AbortController();
          const resp = await fetch(withProject('/v1/runs/' + id + '/events'), { headers, cache: 'no-store', signal: streamCtrl.signal });
          if (resp.status === 401) { loggedOut('Token refused: ' + (await errorOf(resp)).message); return; }
          if (!resp.ok) throw await errorOf(resp);
          setStream('live');
          connects++;
          $('run-stream').dataset.connects = String(connects);
          backoff = 500;
          await readSse(resp.body, dispatch);
        } catch (e) {
          if (stopped || ended) return;
          if (isAbort(e) && !dropped) return;
          if (e.status === 404) { flash('Run ' + id + ': ' + e.message); return; }
        }
        dropped = false;
        if (stopped || ended) return;
        // The stream dropped before `end`: resume after the last event seen.
        setStream('reconnecting');
        await sleep(backoff);
        backoff = Math.min(backoff * 2, 10000);
      }
    }

    function dispatch(type, data, eid) {
      if (stopped) return;
      if (eid !== null && eid !== '') lastEventId = eid;
      let obj;
      try { obj = JSON.parse(data); } catch (_) { return; }
      if (type === 'run_event') onEvent(obj);
      else if (type === 'status') renderRun(obj);
      else if (type === 'end') {
        // Nothing follows `end`; don't wait for the daemon to close.
        finish(obj);
        streamCtrl.abort();
      }
    }

    // ---- start ----

    (async () => {
      try {
        const r = await api('/v1/runs/' + id, { signal: ctrl.signal });
        renderRun(r);
        const list = await apiAll('/v1/runs/' + id + '/hosts', ctrl.signal);
        // Rows in the daemon's order; events then derive each one's status.
        applyHosts(list);
        paintNow();
        if (FINISHED.has(r.status)) {
          // Nothing will move: the stored hosts are the final word.
          ended = true;
          setStream('ended');
          await pollStdout();
          paintNow();
          document.body.dataset.runEnded = String(id);
          return;
        }
        pollStdout();
        tickTimer = setInterval(() => { if (run && !ended) renderRun(run); }, 1000);
        await stream();
      } catch (e) {
        if (!stopped && !isAbort(e) && e.status !== 401) flash('Run ' + id + ': ' + e.message);
      }
    })();

    // Cuts the live connection as a network failure would; the stream
    // resumes with Last-Event-ID. For the browser test and for debugging.
    window.cratonDropStream = () => {
      if (!streamCtrl || ended) return false;
      dropped = true;
      streamCtrl.abort();
      return true;
    };

    const onFilter = () => {
      const f = $('host-filter').value.trim();
      for (const name of order) {
        const h = hosts.get(name);
        if (h.row) h.row.hidden = f !== '' && !name.includes(f);
      }
    };
    $('host-filter').addEventListener('input', onFilter);

    return {
      stop() {
        stopped = true;
        ctrl.abort();
        if (streamCtrl) streamCtrl.abort();
        clearTimeout(stdoutTimer);
        clearInterval(tickTimer);
        if (frame) cancelAnimationFrame(frame);
        $('host-filter').removeEventListener('input', onFilter);
        delete window.cratonDropStream;
        delete document.body.dataset.runEnded;
      },
    };
  }

  // ---------- SSE over fetch ----------

  // Reads a text/event-stream body to its end, calling onEvent(type, data,
  // id) per event (WHATWG rules: `field: value` lines, a blank line ends an
  // event, `:` starts a comment, CR, LF or CRLF end lines).
  async function readSse(body, onEvent) {
    const reader = body.pipeThrough(new TextDecoderStream()).getReader();
    let buf = '';
    let type = '';
    let data = [];
    let id = null;
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buf += value;
      let start = 0;
      for (;;) {
        let i = start;
        while (i < buf.length && buf[i] !== '\n' && buf[i] !== '\r') i++;
        if (i >= buf.length) break;
        // A CR at the end of the chunk may be half of a CRLF.
        if (buf[i] === '\r' && i + 1 >= buf.length) break;
        const line = buf.slice(start, i);
        start = i + (buf[i] === '\r' && buf[i + 1] === '\n' ? 2 : 1);
        if (line === '') {
          if (data.length) onEvent(type || 'message', data.join('\n'), id);
          type = '';
          data = [];
          continue;
        }
        if (line[0] === ':') continue;
        const c = line.indexOf(':');
        const field = c < 0 ? line : line.slice(0, c);
        let v = c < 0 ? '' : line.slice(c + 1);
        if (v[0] === ' ') v = v.slice(1);
        if (field === 'data') data.push(v);
        else if (field === 'event') type = v;
        else if (field === 'id') { if (!v.includes('\0')) id = v; }
      }
      buf = buf.slice(start);
    }
  }

  // ---------- boot ----------

  $('login-form').addEventListener('submit', onLogin);
  $('logout').addEventListener('click', () => { loggedOut(''); location.hash = '#/runs'; });
  window.addEventListener('hashchange', route);
  route();
})();
