// The mediahost dashboard: reads the JSON API (/v1/...) and the job event streams, and renders
// with DOM calls only (never innerHTML), so nothing a job or preset says can become markup.
// Views are addressed by the URL fragment: #/ (jobs), #/jobs/<id>, #/presets,
// #/submit/<preset>/<version>.
'use strict';

(() => {
  const TERMINAL = ['COMPLETED', 'FAILED', 'DEAD', 'CANCELLED'];
  const REFRESH_MS = 2000;
  const MAX_LIVE_STREAMS = 5;

  const $ = (sel, root = document) => root.querySelector(sel);
  const enc = encodeURIComponent;

  // Builds an element: h('a', {href: '#/', class: 'x'}, 'text', child, ...).
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === 'class') el.className = v;
      else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
      else if (v === true) el.setAttribute(k, '');
      else el.setAttribute(k, String(v));
    }
    for (const c of children.flat(Infinity)) {
      if (c === null || c === undefined || c === false) continue;
      el.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return el;
  }

  // Only http(s) URLs and same-host paths become links or media sources.
  function safeUrl(u) {
    if (typeof u !== 'string') return null;
    if (/^https?:\/\//i.test(u) || (u.startsWith('/') && !u.startsWith('//'))) return u;
    return null;
  }

  function time(s) {
    return s ? String(s).replace('T', ' ').replace(/\.\d+Z$/, 'Z') : '';
  }

  let noticeTimer = null;
  function notify(message, kind) {
    const el = $('#notice');
    el.textContent = message || '';
    el.className = message ? `shown ${kind || ''}` : '';
    clearTimeout(noticeTimer);
    if (message) noticeTimer = setTimeout(() => notify(''), 6000);
  }

  class ApiError extends Error {
    constructor(status, body) {
      super((body && (body.detail || body.title)) || `HTTP ${status}`);
      this.status = status;
      this.body = body;
    }
  }

  // A JSON API call. A read answered 401 means the session lapsed: the page reloads into the
  // login form.
  async function api(path, options = {}) {
    const opts = Object.assign({ credentials: 'same-origin' }, options);
    opts.headers = Object.assign({ accept: 'application/json' }, options.headers || {});
    const resp = await fetch(path, opts);
    const text = await resp.text();
    let body = null;
    try {
      body = text ? JSON.parse(text) : null;
    } catch (_) {
      body = { detail: text };
    }
    if (resp.status === 401 && (!opts.method || opts.method === 'GET')) {
      window.location.reload();
    }
    if (!resp.ok) throw new ApiError(resp.status, body);
    return body;
  }

  function stateBadge(state, id) {
    return h('span', { class: `state state-${state}`, id, 'data-state': state }, state);
  }

  function progressBar(fraction, label) {
    const p = Math.max(0, Math.min(1, Number(fraction) || 0));
    return h('span', { class: 'bar' },
      h('progress', { max: '1', value: String(p), 'aria-label': label || 'progress' }),
      h('span', { class: 'pct' }, `${Math.round(p * 100)}%`));
  }

  // Each output's phase and progress while an attempt runs.
  function outputProgress(map) {
    const entries = Object.entries(map || {});
    if (!entries.length) return null;
    return h('ul', { class: 'outputs-progress' }, entries.map(([name, o]) =>
      h('li', { 'data-output': name },
        h('span', { class: 'out-name' }, name), ' ',
        h('span', { class: `phase phase-${o.state}` }, o.state), ' ',
        progressBar(o.progress, `${name} progress`))));
  }

  // --- the queue panel and the running jobs -------------------------------------------------

  async function refreshQueue() {
    try {
      const q = await api('/v1/queue');
      for (const p of ['high', 'normal', 'low']) $(`#queue-${p}`).textContent = q.pending[p];
      $('#queue-processing').textContent = q.processing;
      $('#queue-delayed').textContent = q.delayed;
      $('#queue').dataset.loaded = 'true';
    } catch (e) {
      notify(`Queue: ${e.message}`, 'error');
    }
  }

  const live = new Map(); // job id -> {source, card}

  function runningCard(job) {
    return h('div', { class: 'running-job', 'data-job-id': job.id },
      h('a', { href: `#/jobs/${enc(job.id)}` }, job.id.slice(0, 8)), ' ',
      h('span', { class: 'muted' }, `${job.preset.name}@${job.preset.version}`),
      h('div', { class: 'live' }, progressBar(0, 'job progress')));
  }

  function updateCard(card, data) {
    const body = h('div', { class: 'live' },
      progressBar(data.progress, 'job progress'), outputProgress(data.output_progress));
    card.querySelector('.live').replaceWith(body);
  }

  async function refreshRunning() {
    let jobs;
    try {
      jobs = (await api('/v1/jobs?state=PROCESSING&limit=20')).jobs;
    } catch (_) {
      return;
    }
    const list = $('#running-list');
    const ids = new Set(jobs.map((j) => j.id));
    for (const [id, entry] of live) {
      if (!ids.has(id)) {
        if (entry.source) entry.source.close();
        live.delete(id);
      }
    }
    for (const job of jobs) {
      if (live.has(job.id)) continue;
      const card = runningCard(job);
      const entry = { card, source: null };
      if ([...live.values()].filter((e) => e.source).length < MAX_LIVE_STREAMS) {
        entry.source = watch(job.id, (data) => updateCard(card, data), () => live.delete(job.id));
      }
      live.set(job.id, entry);
    }
    const cards = jobs.map((j) => live.get(j.id).card);
    if (cards.length) list.replaceChildren(...cards);
    else list.replaceChildren(h('p', { class: 'muted' }, 'Nothing running.'));
  }

  // Follows a job's event stream: `onData` for each state or progress event, `onEnd` after the
  // terminal one (or when the stream fails). Returns the EventSource.
  function watch(id, onData, onEnd) {
    const source = new EventSource(`/v1/jobs/${enc(id)}/events`);
    const handle = (ev) => {
      let data;
      try {
        data = JSON.parse(ev.data);
      } catch (_) {
        return;
      }
      onData(data);
      if (TERMINAL.includes(data.state)) {
        source.close();
        onEnd(data);
      }
    };
    source.addEventListener('state', handle);
    source.addEventListener('progress', handle);
    // The stream ends after the terminal event; anything else (overload, network): stop, and
    // let the periodic refresh show the job.
    source.onerror = () => {
      source.close();
      onEnd(null);
    };
    return source;
  }

  // --- views --------------------------------------------------------------------------------

  let viewSeq = 0;
  let current = { name: '', cleanup: null };

  function setView(name, ...children) {
    $('#view').replaceChildren(...children);
    $('#view').dataset.view = name;
  }

  function jobsTable(jobs, id) {
    if (!jobs.length) return h('p', { class: 'muted', id }, 'No jobs.');
    return h('table', { class: 'jobs', id },
      h('thead', {}, h('tr', {}, ['job', 'preset', 'state', 'priority', 'attempts', 'created',
        'finished', 'error'].map((c) => h('th', {}, c)))),
      h('tbody', {}, jobs.map((j) => h('tr', { 'data-job-id': j.id, 'data-state': j.state },
        h('td', { class: 'mono' }, h('a', { href: `#/jobs/${enc(j.id)}`, title: j.id }, j.id.slice(0, 8))),
        h('td', {}, `${j.preset.name}@${j.preset.version}`),
        h('td', {}, stateBadge(j.state)),
        h('td', {}, j.priority),
        h('td', { class: 'num' }, j.attempts),
        h('td', { class: 'time' }, time(j.created_at)),
        h('td', { class: 'time' }, time(j.finished_at)),
        h('td', { class: 'code' }, j.error ? `${j.error.code} (${j.error.step})` : '')))));
  }

  async function showJobs(seq) {
    const [recent, failed, dead] = await Promise.all([
      api('/v1/jobs?limit=25'),
      api('/v1/jobs?state=FAILED&limit=15'),
      api('/v1/jobs?state=DEAD&limit=15'),
    ]);
    if (seq !== viewSeq) return;
    const failures = failed.jobs.concat(dead.jobs)
      .sort((a, b) => String(b.created_at).localeCompare(String(a.created_at)));
    setView('jobs',
      h('section', { class: 'panel', id: 'recent' },
        h('h2', {}, 'Recent jobs'), jobsTable(recent.jobs, 'recent-jobs')),
      h('section', { class: 'panel', id: 'failed' },
        h('h2', {}, 'Failed and dead jobs'), jobsTable(failures, 'failed-jobs')));
  }

  function player(o) {
    const url = safeUrl(o.download_url);
    if (!url || o.state === 'FAILED') return null;
    const c = String(o.container || '').toLowerCase();
    const kinds = (o.streams || []).map((s) => s.kind);
    const images = ['jpg', 'jpeg', 'png', 'webp', 'gif', 'avif'];
    if (o.kind === 'still' || images.includes(c)) {
      return h('img', { src: url, alt: `output ${o.name}`, class: 'preview' });
    }
    if (o.kind === 'image-sequence') {
      return h('div', { class: 'sequence' }, (o.objects || []).slice(0, 8)
        .map((x) => safeUrl(x.download_url))
        .filter(Boolean)
        .map((u) => h('img', { src: u, alt: `output ${o.name}`, class: 'thumb' })));
    }
    if (o.kind !== 'file') return null;
    if (kinds.includes('video')) {
      return h('video', { src: url, controls: true, preload: 'metadata', class: 'preview' });
    }
    if (kinds.includes('audio') || ['wav', 'flac', 'mp3', 'ogg', 'opus', 'm4a', 'aac'].includes(c)) {
      return h('audio', { src: url, controls: true, preload: 'metadata' });
    }
    return null;
  }

  function outputsSection(job) {
    if (!job.outputs || !job.outputs.length) return null;
    return h('section', { class: 'panel', id: 'job-outputs' }, h('h2', {}, 'Outputs'),
      job.outputs.map((o) => {
        const url = safeUrl(o.download_url);
        const facts = [o.kind, o.container, o.size_bytes != null ? `${o.size_bytes} bytes` : null,
          o.duration_s != null ? `${Number(o.duration_s).toFixed(2)} s` : null,
          (o.codecs || []).join(', ') || null, o.optional ? 'optional' : null].filter(Boolean);
        return h('div', { class: 'output', 'data-output': o.name },
          h('h3', {}, o.name, ' ', stateBadge(o.state)),
          h('p', { class: 'muted' }, facts.join(' · ')),
          o.error ? h('p', { class: 'error' }, `${o.error.code}: ${o.error.message}`) : null,
          player(o),
          url ? h('p', {}, h('a', { href: url, class: 'download', rel: 'noreferrer' }, 'Download')) : null,
          h('p', { class: 'mono small' }, o.uri));
      }));
  }

  function detailsList(pairs) {
    return h('dl', { class: 'facts' }, pairs.filter(([, v]) => v !== null && v !== undefined && v !== '')
      .map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]));
  }

  function pre(value, id) {
    return h('pre', { id }, typeof value === 'string' ? value : JSON.stringify(value, null, 2));
  }

  function renderJob(job, logs) {
    const t = job.timings || {};
    const actions = h('div', { class: 'actions' });
    if (!TERMINAL.includes(job.state)) {
      actions.append(h('button', { type: 'button', id: 'cancel-job', onclick: () => act(job.id, 'cancel') }, 'Cancel'));
    } else {
      actions.append(h('button', { type: 'button', id: 'replay-job', onclick: () => act(job.id, 'replay') }, 'Replay'));
    }
    setView('job',
      h('section', { class: 'panel', id: 'job', 'data-job-id': job.id },
        h('h2', {}, 'Job ', h('span', { class: 'mono' }, job.id), ' ', stateBadge(job.state, 'job-state')),
        actions,
        h('div', { id: 'job-progress' }, TERMINAL.includes(job.state) ? null
          : [progressBar(job.progress, 'job progress'), outputProgress(job.output_progress)]),
        job.error ? h('p', { class: 'error', id: 'job-error' },
          h('strong', {}, job.error.code), ` at ${job.error.step}: ${job.error.message}`) : null,
        detailsList([
          ['preset', `${job.preset.name}@${job.preset.version}`],
          ['priority', job.priority],
          ['attempts', `${job.attempts} of ${job.max_attempts}`],
          ['outcome', job.outcome],
          ['cached from', job.cached ? job.cached.job : null],
          ['replay of', job.replay_of],
          ['next attempt', time(job.next_attempt_at)],
          ['created', time(t.created_at)],
          ['started', time(t.started_at)],
          ['finished', time(t.finished_at)],
          ['queued / ran / ffmpeg', [t.queue_s, t.run_s, t.ffmpeg_s].some((x) => x != null)
            ? [t.queue_s, t.run_s, t.ffmpeg_s].map((x) => (x == null ? '–' : `${Number(x).toFixed(2)} s`)).join(' / ')
            : null],
        ])),
      outputsSection(job),
      job.report ? h('section', { class: 'panel' }, h('h2', {}, 'Report'), pre(job.report, 'job-report')) : null,
      h('section', { class: 'panel' }, h('h2', {}, 'Inputs and params'),
        pre({ inputs: job.inputs, params: job.params }, 'job-request')),
      h('section', { class: 'panel', id: 'job-history' }, h('h2', {}, 'History'),
        h('table', {}, h('thead', {}, h('tr', {}, ['at', 'state', 'attempt', 'code', 'note'].map((c) => h('th', {}, c)))),
          h('tbody', {}, (job.history || []).map((x) => h('tr', {},
            h('td', { class: 'time' }, time(x.at)), h('td', {}, stateBadge(x.state)), h('td', { class: 'num' }, x.attempt),
            h('td', { class: 'code' }, x.code || ''), h('td', {}, x.note || '')))))),
      h('section', { class: 'panel', id: 'job-log' }, h('h2', {}, 'Log'),
        logs ? h('pre', { class: 'log' }, logs.logs.map((l) => `${time(l.at)} [${l.source}] ${l.message}`).join('\n'))
          : h('p', { class: 'muted' }, 'No log.')));
  }

  async function act(id, what) {
    try {
      const job = await api(`/v1/jobs/${enc(id)}/${what}`, {
        method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}',
      });
      notify(what === 'replay' ? `Replayed as ${job.id}` : 'Cancel requested', 'ok');
      window.location.hash = `#/jobs/${enc(job.id || id)}`;
      if (what !== 'replay') route();
    } catch (e) {
      notify(`${what}: ${e.message}`, 'error');
    }
  }

  async function showJob(seq, id) {
    const job = await api(`/v1/jobs/${enc(id)}`);
    let logs = null;
    try {
      logs = await api(`/v1/jobs/${enc(id)}/logs`);
    } catch (_) { /* the detail stands without it */ }
    if (seq !== viewSeq) return;
    renderJob(job, logs);
    if (TERMINAL.includes(job.state)) return;
    // Live: the state and each output's progress from the event stream; the whole job again
    // (outputs, players, log) once it ends.
    const source = watch(id, (data) => {
      if (seq !== viewSeq) return;
      const badge = $('#job-state');
      badge.textContent = data.state;
      badge.dataset.state = data.state;
      badge.className = `state state-${data.state}`;
      $('#job-progress').replaceChildren(progressBar(data.progress, 'job progress'),
        outputProgress(data.output_progress) || '');
    }, (last) => {
      // After the terminal event at once; after a failed stream, a little later.
      if (seq === viewSeq) setTimeout(() => { if (seq === viewSeq) route(); }, last ? 300 : 2000);
    });
    current.cleanup = () => source.close();
  }

  async function showPresets(seq) {
    const { presets } = await api('/v1/presets');
    if (seq !== viewSeq) return;
    setView('presets', h('section', { class: 'panel', id: 'presets' }, h('h2', {}, 'Presets'),
      presets.map((p) => h('div', { class: 'preset', 'data-preset': p.name },
        h('h3', {}, p.name, ' ', h('span', { class: 'muted' }, p.latest ? `latest ${p.latest}` : 'every version yanked')),
        h('p', {}, p.summary),
        h('table', { class: 'versions' },
          h('thead', {}, h('tr', {}, ['version', 'interface', 'origin', 'published', 'sha256', 'status', ''].map((c) => h('th', {}, c)))),
          h('tbody', {}, p.versions.map((v) => h('tr', { class: v.yanked ? 'yanked' : '', 'data-version': v.version },
            h('td', { class: 'mono' }, v.version),
            h('td', {}, v.interface),
            h('td', {}, v.origin),
            h('td', { class: 'time' }, time(v.published_at)),
            h('td', { class: 'mono small', title: v.sha256 }, String(v.sha256 || '').slice(0, 12)),
            h('td', {}, v.yanked ? h('span', { class: 'state state-FAILED' }, `yanked ${time(v.yanked_at)}`) : 'live'),
            h('td', {}, v.yanked ? '' : h('a', {
              href: `#/submit/${enc(p.name)}/${enc(v.version)}`, class: 'submit-link',
            }, 'Submit a job…'))))))))));
  }

  // One form field for a declared param, from its schema; empty means "the default".
  function paramField(spec) {
    const id = `param-${spec.name}`;
    const def = spec.default !== undefined ? `default ${spec.default}` : (spec.required ? 'required' : 'unset');
    let input;
    if (spec.type === 'integer' || spec.type === 'number') {
      input = h('input', {
        type: 'number', id, name: spec.name, step: spec.type === 'integer' ? '1' : 'any',
        min: spec.min, max: spec.max, placeholder: def, required: spec.required,
      });
    } else if (spec.type === 'boolean' || spec.type === 'choice') {
      const options = spec.type === 'boolean' ? ['true', 'false'] : spec.options || [];
      input = h('select', { id, name: spec.name, required: spec.required },
        h('option', { value: '' }, `(${def})`),
        options.map((o) => h('option', { value: String(o) }, String(o))));
    } else {
      input = h('input', {
        type: 'text', id, name: spec.name, maxlength: spec.max_length, placeholder: def,
        required: spec.required,
      });
    }
    const range = (spec.min !== undefined || spec.max !== undefined)
      ? ` (${spec.min ?? '−∞'} … ${spec.max ?? '∞'})` : '';
    return h('div', { class: 'field' },
      h('label', { for: id }, spec.name, h('span', { class: 'muted' }, ` ${spec.type}${range}`)),
      input,
      h('small', { class: 'muted' }, spec.description || ''));
  }

  function paramValue(spec, raw) {
    if (raw === '') return undefined;
    if (spec.type === 'integer') return parseInt(raw, 10);
    if (spec.type === 'number') return Number(raw);
    if (spec.type === 'boolean') return raw === 'true';
    return raw;
  }

  // Uploads a picked file (POST /v1/uploads, then PUT to the signed URL) and fills in its URI.
  async function upload(file, target, status) {
    status.textContent = `uploading ${file.name}…`;
    try {
      const grant = await api('/v1/uploads', {
        method: 'POST', headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ filename: file.name, size_bytes: file.size }),
      });
      const url = safeUrl(grant.upload_url);
      if (!url) throw new Error('the upload URL is not an http(s) URL');
      const resp = await fetch(url, { method: grant.method || 'PUT', body: file });
      if (!resp.ok) throw new Error(`PUT answered ${resp.status}`);
      target.value = grant.uri;
      status.textContent = `uploaded ${file.size} bytes`;
    } catch (e) {
      status.textContent = `upload failed: ${e.message}`;
    }
  }

  function inputField(spec) {
    const id = `input-${spec.name}`;
    const text = h('input', {
      type: 'text', id, name: spec.name, required: spec.required, class: 'uri',
      placeholder: 'local://uploads/… or s3://bucket/…',
    });
    const status = h('small', { class: 'muted upload-status' });
    const file = h('input', {
      type: 'file', id: `file-${spec.name}`, 'aria-label': `upload a file for ${spec.name}`,
      onchange: (ev) => { if (ev.target.files[0]) upload(ev.target.files[0], text, status); },
    });
    return h('div', { class: 'field' },
      h('label', { for: id }, spec.name, h('span', { class: 'muted' }, spec.required ? ' input, required' : ' input, optional')),
      text, h('div', { class: 'upload' }, file, status),
      h('small', { class: 'muted' }, spec.description || ''));
  }

  async function showSubmit(seq, name, version) {
    const v = await api(`/v1/presets/${enc(name)}/${enc(version)}`);
    if (seq !== viewSeq) return;
    const problem = h('p', { class: 'error', id: 'submit-problem' });
    const priority = h('select', { id: 'priority', name: 'priority' },
      ['normal', 'high', 'low'].map((p) => h('option', { value: p }, p)));
    const form = h('form', { id: 'submit-form', 'data-preset': name, 'data-version': version },
      h('fieldset', {}, h('legend', {}, 'Inputs'), v.inputs.map(inputField)),
      h('fieldset', {}, h('legend', {}, 'Params'),
        v.params.length ? v.params.map(paramField) : h('p', { class: 'muted' }, 'This preset takes no params.')),
      h('div', { class: 'field' }, h('label', { for: 'priority' }, 'priority'), priority),
      problem,
      h('button', { type: 'submit', id: 'submit-job' }, `Submit ${name}@${version}`));
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      problem.textContent = '';
      const inputs = {};
      for (const spec of v.inputs) {
        const value = form.querySelector(`#input-${CSS.escape(spec.name)}`).value.trim();
        if (value) inputs[spec.name] = value;
      }
      const params = {};
      for (const spec of v.params) {
        const value = paramValue(spec, form.querySelector(`#param-${CSS.escape(spec.name)}`).value.trim());
        if (value !== undefined) params[spec.name] = value;
      }
      const body = { preset: name, version: `=${version}`, inputs, params, priority: priority.value };
      const button = $('#submit-job');
      button.disabled = true;
      try {
        const job = await api('/v1/jobs', {
          method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body),
        });
        notify(`Submitted job ${job.id}`, 'ok');
        window.location.hash = `#/jobs/${enc(job.id)}`;
      } catch (e) {
        const b = e.body || {};
        const what = b.param ? ` (param ${b.param})` : b.input ? ` (input ${b.input})` : '';
        problem.textContent = `${b.code || e.status}${what}: ${e.message}`;
        button.disabled = false;
      }
    });
    setView('submit', h('section', { class: 'panel', id: 'submit' },
      h('h2', {}, `Submit a job: ${name}@${version}`),
      h('p', {}, v.summary),
      v.yanked ? h('p', { class: 'error' }, 'This version is yanked; new jobs cannot ask for it.') : null,
      form));
  }

  function route() {
    const seq = ++viewSeq;
    if (current.cleanup) current.cleanup();
    current = { cleanup: null };
    const parts = (window.location.hash || '#/').slice(2).split('/').map(decodeURIComponent);
    let shown;
    if (parts[0] === 'jobs' && parts[1]) shown = showJob(seq, parts[1]);
    else if (parts[0] === 'presets') shown = showPresets(seq);
    else if (parts[0] === 'submit' && parts[1] && parts[2]) shown = showSubmit(seq, parts[1], parts[2]);
    else shown = showJobs(seq);
    for (const a of document.querySelectorAll('nav a')) {
      const on = (parts[0] === 'presets' || parts[0] === 'submit') ? a.id === 'nav-presets' : a.id === 'nav-jobs';
      a.classList.toggle('active', on);
    }
    shown.catch((e) => {
      if (seq !== viewSeq) return;
      setView('error', h('section', { class: 'panel' }, h('h2', {}, 'Could not load this view'),
        h('p', { class: 'error' }, e.message)));
    });
  }

  async function tick() {
    await Promise.all([refreshQueue(), refreshRunning()]);
    // The job lists refresh themselves; a job's detail follows its event stream instead.
    if ($('#view').dataset.view === 'jobs') {
      showJobs(viewSeq).catch(() => {});
    }
  }

  window.addEventListener('hashchange', route);
  route();
  tick();
  setInterval(tick, REFRESH_MS);
})();
