// blastdoor admin dashboard. Plain ES2020, no dependencies, no build step.
// Every string that comes from the API goes into the DOM through textContent or
// setAttribute, never through innerHTML.
'use strict';

(() => {
  const TOKEN_KEY = 'blastdoor.admin_token';
  const POLL_MS = 2000;
  const SVG_NS = 'http://www.w3.org/2000/svg';
  const VIEWS = ['overview', 'services', 'spend', 'map'];

  const state = {
    token: sessionStorage.getItem(TOKEN_KEY),
    route: { view: 'overview', service: null },
    gen: 0,
    timer: null,
    overviewWindow: '1h',
    mapWindow: '24h',
    services: null, // last /v1/services answer, to open a detail page at once
    last: null, // { view, data } last rendered, for re-rendering on resize
    sigs: new Map(), // render signatures: skip DOM work when nothing changed
    bannerSource: null,
  };

  // ---------------------------------------------------------------- helpers

  const $ = (sel, root = document) => root.querySelector(sel);

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    applyAttrs(node, attrs);
    appendAll(node, children);
    return node;
  }

  function svg(tag, attrs, ...children) {
    const node = document.createElementNS(SVG_NS, tag);
    applyAttrs(node, attrs);
    appendAll(node, children);
    return node;
  }

  function applyAttrs(node, attrs) {
    if (!attrs) return;
    for (const [k, v] of Object.entries(attrs)) {
      if (v === null || v === undefined || v === false) continue;
      if (k === 'text') node.textContent = String(v);
      else if (k === 'class') node.setAttribute('class', v);
      else if (k === 'data') for (const [dk, dv] of Object.entries(v)) node.dataset[dk] = String(dv);
      else node.setAttribute(k, v === true ? '' : String(v));
    }
  }

  function appendAll(node, children) {
    for (const c of children.flat()) {
      if (c === null || c === undefined || c === false) continue;
      node.appendChild(typeof c === 'object' ? c : document.createTextNode(String(c)));
    }
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
  }

  /** True (and remembers) when `sig` differs from the last one seen under `key`. */
  function changed(key, sig) {
    if (state.sigs.get(key) === sig) return false;
    state.sigs.set(key, sig);
    return true;
  }

  const rowSigs = new WeakMap();

  /**
   * Keyed update of a list of children: rows whose content did not change are kept
   * as they are (so a click or a hover on them survives a refresh).
   */
  function syncChildren(parent, items, keyOf, build) {
    const existing = new Map();
    for (const child of Array.from(parent.children)) existing.set(child.dataset.key, child);
    const wanted = [];
    for (const item of items) {
      const key = String(keyOf(item));
      const sig = JSON.stringify(item);
      let node = existing.get(key);
      if (!node || rowSigs.get(node) !== sig) {
        const fresh = build(item);
        fresh.dataset.key = key;
        rowSigs.set(fresh, sig);
        if (node) node.replaceWith(fresh);
        node = fresh;
      }
      existing.delete(key);
      wanted.push(node);
    }
    for (const stale of existing.values()) stale.remove();
    wanted.forEach((node, i) => {
      if (parent.children[i] !== node) parent.insertBefore(node, parent.children[i] || null);
    });
  }

  function show(node, visible) {
    node.toggleAttribute('hidden', !visible); // an attribute, so it works on <svg> too
  }

  // ---------------------------------------------------------------- formatting

  const intFmt = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });

  function num(v) {
    const n = typeof v === 'string' ? Number(v) : v;
    return Number.isFinite(n) ? n : 0;
  }

  function fmtInt(v) {
    return intFmt.format(Math.round(num(v)));
  }

  function fmtCompact(v) {
    const n = num(v);
    if (Math.abs(n) < 1000) return fmtInt(n);
    if (Math.abs(n) < 1e6) return `${(n / 1e3).toFixed(n < 1e4 ? 1 : 0)}k`;
    if (Math.abs(n) < 1e9) return `${(n / 1e6).toFixed(n < 1e7 ? 1 : 0)}M`;
    return `${(n / 1e9).toFixed(1)}B`;
  }

  function fmtUsd(v) {
    const n = num(v);
    if (n === 0) return '$0.00';
    const a = Math.abs(n);
    if (a < 0.0001) return n < 0 ? '-<$0.0001' : '<$0.0001';
    const digits = a >= 1 ? 2 : 4;
    const s = n.toLocaleString('en-US', {
      style: 'currency',
      currency: 'USD',
      minimumFractionDigits: 2,
      maximumFractionDigits: digits,
    });
    return s;
  }

  function fmtMs(v) {
    if (v === null || v === undefined || !Number.isFinite(Number(v))) return '—';
    const n = Number(v);
    if (n >= 1000) return `${(n / 1000).toFixed(n >= 10000 ? 1 : 2)} s`;
    if (n >= 100) return `${n.toFixed(0)} ms`;
    if (n >= 10) return `${n.toFixed(1)} ms`;
    if (n >= 1) return `${n.toFixed(2)} ms`;
    if (n === 0) return '0 ms';
    if (n < 0.01) return `${(n * 1000).toFixed(0)} µs`;
    return `${n.toFixed(2)} ms`;
  }

  function axisMs(v) {
    if (v >= 1000) return `${+(v / 1000).toFixed(2)}s`;
    return `${+v.toFixed(2)}ms`;
  }

  function fmtRate(v) {
    const n = num(v);
    if (n === 0) return '0';
    if (n >= 100) return fmtInt(n);
    if (n >= 10) return n.toFixed(1);
    if (n >= 1) return n.toFixed(2);
    if (n >= 0.001) return n.toFixed(3);
    return '<0.001';
  }

  function fmtPct(ratio) {
    const p = num(ratio) * 100;
    if (p === 0) return '0%';
    if (p < 0.01) return '<0.01%';
    return `${p.toFixed(p < 10 ? 2 : 1)}%`;
  }

  function fmtPercent(p) {
    const n = num(p);
    return `${n.toFixed(n < 10 ? 1 : 0)}%`;
  }

  const pad2 = (n) => String(n).padStart(2, '0');

  function fmtClock(ms, withSeconds = true) {
    const d = new Date(ms);
    const hm = `${pad2(d.getHours())}:${pad2(d.getMinutes())}`;
    return withSeconds ? `${hm}:${pad2(d.getSeconds())}` : hm;
  }

  function fmtDate(ms) {
    const d = new Date(ms);
    return `${d.getFullYear()}-${pad2(d.getMonth() + 1)}-${pad2(d.getDate())}`;
  }

  function fmtDateTime(ms) {
    return `${fmtDate(ms)} ${fmtClock(ms, false)}`;
  }

  function fmtAgo(ms, now = Date.now()) {
    const s = Math.max(0, Math.round((now - ms) / 1000));
    if (s < 60) return `${s}s ago`;
    if (s < 3600) return `${Math.round(s / 60)}m ago`;
    if (s < 86400) return `${Math.round(s / 3600)}h ago`;
    return `${Math.round(s / 86400)}d ago`;
  }

  const groupName = (g) => (g === '' || g === null || g === undefined ? '(none)' : String(g));

  // ---------------------------------------------------------------- API

  class ApiError extends Error {
    constructor(status, problem, fallback) {
      const p = problem || {};
      const text = p.detail || p.title || fallback || `HTTP ${status}`;
      super(text);
      this.status = status;
      this.problem = p;
    }

    describe() {
      const p = this.problem;
      let s = this.message;
      if (p.title && p.detail && p.title !== p.detail) s = `${p.title}: ${p.detail}`;
      if (this.status) s += ` (HTTP ${this.status}${p.code ? `, ${p.code}` : ''})`;
      if (p.request_id) s += ` · request ${p.request_id}`;
      return s;
    }
  }

  async function api(path, { token = state.token, accept = 'application/json' } = {}) {
    let resp;
    try {
      resp = await fetch(path, {
        headers: { Authorization: `Bearer ${token}`, Accept: accept },
        cache: 'no-store',
      });
    } catch (e) {
      throw new ApiError(0, null, `Cannot reach the admin API: ${e.message}`);
    }
    if (!resp.ok) {
      let problem = null;
      try {
        const type = resp.headers.get('content-type') || '';
        if (type.includes('json')) problem = await resp.json();
        else {
          const body = (await resp.text()).trim();
          if (body) problem = { detail: body.slice(0, 300) };
        }
      } catch (_) {
        problem = null;
      }
      throw new ApiError(resp.status, problem, resp.statusText);
    }
    if (accept === 'application/json') {
      try {
        return await resp.json();
      } catch (e) {
        throw new ApiError(resp.status, null, `The admin API sent invalid JSON for ${path}`);
      }
    }
    return resp.text();
  }

  // ---------------------------------------------------------------- banner

  function showBanner(err, source) {
    const text = err instanceof ApiError ? err.describe() : `Dashboard error: ${err && err.message ? err.message : err}`;
    $('#error-text').textContent = text;
    state.bannerSource = source;
    show($('#error-banner'), true);
  }

  function clearBanner(source) {
    if (source && state.bannerSource !== source) return;
    state.bannerSource = null;
    show($('#error-banner'), false);
  }

  // ---------------------------------------------------------------- session

  function showLogin(message) {
    stopPolling();
    show($('#app'), false);
    show($('#nav'), false);
    show($('#session-bar'), false);
    show($('#login-view'), true);
    clearBanner();
    const err = $('#login-error');
    err.textContent = message || '';
    show(err, Boolean(message));
    const input = $('#token');
    input.value = '';
    input.focus();
  }

  function showApp() {
    show($('#login-view'), false);
    show($('#app'), true);
    show($('#nav'), true);
    show($('#session-bar'), true);
    onRoute();
  }

  function forget() {
    state.token = null;
    state.services = null;
    state.last = null;
    state.sigs.clear();
    sessionStorage.removeItem(TOKEN_KEY);
  }

  function expireSession() {
    forget();
    showLogin('Your session has ended: the admin token was rejected. Sign in again.');
  }

  async function onLogin(ev) {
    ev.preventDefault();
    const input = $('#token');
    const button = $('#login');
    const err = $('#login-error');
    const token = input.value.trim();
    if (!token) {
      err.textContent = 'Enter the admin token.';
      show(err, true);
      return;
    }
    button.disabled = true;
    button.textContent = 'Signing in…';
    try {
      const services = await api('/v1/services', { token });
      state.token = token;
      sessionStorage.setItem(TOKEN_KEY, token);
      state.services = services;
      show(err, false);
      input.value = '';
      showApp();
    } catch (e) {
      if (e instanceof ApiError && e.status === 401) {
        err.textContent = 'That token was rejected (401 Unauthorized). Check the admin token and try again.';
      } else {
        err.textContent = e instanceof ApiError ? e.describe() : String(e);
      }
      show(err, true);
      input.select();
    } finally {
      button.disabled = false;
      button.textContent = 'Sign in';
    }
  }

  function onLogout() {
    forget();
    showLogin('');
  }

  // ---------------------------------------------------------------- routing and polling

  function parseHash() {
    const h = decodeURIComponent(location.hash.replace(/^#\/?/, ''));
    const slash = h.indexOf('/');
    const view = slash < 0 ? h : h.slice(0, slash);
    const rest = slash < 0 ? '' : h.slice(slash + 1);
    if (view === 'services' && rest) return { view, service: rest };
    if (VIEWS.includes(view)) return { view, service: null };
    return { view: 'overview', service: null };
  }

  function onRoute() {
    if (!state.token) return;
    const route = parseHash();
    state.route = route;
    for (const v of VIEWS) {
      show($(`#view-${v}`), v === route.view);
      const link = $(`#nav-${v}`);
      if (v === route.view) link.setAttribute('aria-current', 'page');
      else link.removeAttribute('aria-current');
    }
    if (route.view === 'services') {
      show($('#services-list'), !route.service);
      show($('#service-detail'), Boolean(route.service));
      if (route.service && state.services) renderServiceDetail(state.services, route.service);
    }
    const titles = { overview: 'Overview', services: route.service || 'Services', spend: 'Spend', map: 'Map' };
    document.title = `${titles[route.view]} · blastdoor`;
    refresh();
  }

  function stopPolling() {
    clearTimeout(state.timer);
    state.timer = null;
    state.gen += 1; // whatever is in flight is now stale
  }

  const loaders = {
    overview: async () => {
      const w = state.overviewWindow;
      const [live, spend] = await Promise.all([
        api(`/v1/dashboard/live?window=${encodeURIComponent(w)}`),
        api('/v1/dashboard/spend'),
      ]);
      return { live, spend };
    },
    services: async () => api('/v1/services'),
    spend: async () => {
      const [budgets, spend] = await Promise.all([api('/v1/budgets'), api('/v1/dashboard/spend')]);
      return { budgets, spend };
    },
    map: async () => api(`/v1/dashboard/graph?window=${encodeURIComponent(state.mapWindow)}`),
  };

  function render(view, data) {
    if (view === 'overview') renderOverview(data);
    else if (view === 'services') {
      state.services = data;
      if (state.route.service) renderServiceDetail(data, state.route.service);
      else renderServices(data);
    } else if (view === 'spend') renderSpend(data);
    else if (view === 'map') renderMap(data);
    state.last = { view, data };
  }

  async function refresh() {
    clearTimeout(state.timer);
    state.timer = null;
    if (!state.token || document.hidden) return;
    const gen = ++state.gen;
    const view = state.route.view;
    try {
      const data = await loaders[view]();
      if (gen !== state.gen) return;
      render(view, data);
      $('#updated').textContent = `updated ${fmtClock(Date.now())}`;
      $('#updated').classList.remove('stale');
      clearBanner('poll');
    } catch (err) {
      if (gen !== state.gen) return;
      if (err instanceof ApiError && err.status === 401) {
        expireSession();
        return;
      }
      if (!(err instanceof ApiError)) console.error(err); // a bug of ours: make it loud
      $('#updated').classList.add('stale');
      showBanner(err, 'poll');
    }
    if (gen === state.gen) state.timer = setTimeout(refresh, POLL_MS);
  }

  function onVisibility() {
    if (document.hidden) stopPolling();
    else refresh();
  }

  let resizeTimer = null;
  function onResize() {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(() => {
      if (state.last && state.last.view === state.route.view) {
        try {
          render(state.last.view, state.last.data);
        } catch (err) {
          console.error(err);
          showBanner(err, 'poll');
        }
      }
    }, 150);
  }

  function setupSegmented(groupSel, get, set) {
    const group = $(groupSel);
    const sync = () => {
      for (const b of group.querySelectorAll('button')) b.setAttribute('aria-pressed', String(b.dataset.window === get()));
    };
    group.addEventListener('click', (ev) => {
      const b = ev.target.closest('button[data-window]');
      if (!b || b.dataset.window === get()) return;
      set(b.dataset.window);
      sync();
      refresh();
    });
    sync();
  }

  // ---------------------------------------------------------------- charts

  function niceStep(max, count, integer) {
    const raw = max / count;
    const pow = 10 ** Math.floor(Math.log10(raw));
    const f = raw / pow;
    let step = (f <= 1 ? 1 : f <= 2 ? 2 : f <= 2.5 ? 2.5 : f <= 5 ? 5 : 10) * pow;
    if (integer) step = Math.max(1, Math.ceil(step));
    return step;
  }

  function yAxis(maxVal, integer) {
    const max = maxVal > 0 ? maxVal : 1;
    const step = niceStep(max, 4, integer);
    const top = Math.ceil(max / step - 1e-9) * step;
    const ticks = [];
    for (let i = 0; i * step <= top + step / 2; i += 1) ticks.push(+(i * step).toPrecision(12));
    return { top, ticks };
  }

  const TIME_STEPS = [60, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400].map((s) => s * 1000);

  /**
   * Draws axes and grid for a time chart into a fresh <svg>; returns helpers to place marks.
   * t0/t1 bound the x range (ms), `top` the y range.
   */
  function timeFrame(container, { t0, t1, top, ticks, yFmt, height }) {
    const W = Math.max(280, Math.floor(container.clientWidth || 600));
    const H = height || container.clientHeight || 180;
    const m = { l: 52, r: 12, t: 10, b: 22 };
    const pw = W - m.l - m.r;
    const ph = H - m.t - m.b;
    const root = svg('svg', { width: W, height: H, viewBox: `0 0 ${W} ${H}`, class: 'chart-svg' });
    const x = (t) => m.l + ((t - t0) / (t1 - t0)) * pw;
    const y = (v) => m.t + ph - (v / top) * ph;
    const grid = svg('g', { class: 'grid' });
    for (const v of ticks) {
      const yy = Math.round(y(v)) + 0.5;
      grid.appendChild(svg('line', { x1: m.l, x2: W - m.r, y1: yy, y2: yy }));
      grid.appendChild(svg('text', { x: m.l - 6, y: yy + 3.5, 'text-anchor': 'end', class: 'axis-label', text: yFmt(v) }));
    }
    // x labels on round local times
    const span = t1 - t0;
    const every = TIME_STEPS.find((s) => span / s <= 7) || TIME_STEPS[TIME_STEPS.length - 1];
    const tz = new Date(t0).getTimezoneOffset() * 60000;
    let t = Math.ceil((t0 - tz) / every) * every + tz;
    const withDate = span > 2 * 86400000;
    for (; t <= t1; t += every) {
      const xx = Math.round(x(t)) + 0.5;
      if (xx < m.l + 14 || xx > W - m.r - 14) continue;
      grid.appendChild(svg('line', { x1: xx, x2: xx, y1: m.t + ph, y2: m.t + ph + 4, class: 'tick' }));
      const label = withDate ? fmtDate(t).slice(5) : fmtClock(t, false);
      grid.appendChild(svg('text', { x: xx, y: H - 6, 'text-anchor': 'middle', class: 'axis-label', text: label }));
    }
    grid.appendChild(svg('line', { x1: m.l, x2: W - m.r, y1: m.t + ph + 0.5, y2: m.t + ph + 0.5, class: 'baseline' }));
    root.appendChild(grid);
    return { root, x, y, W, H, m, pw, ph };
  }

  /** Buckets a sparse series onto a regular grid of `n` steps ending at the latest step. */
  function regularSteps(series, stepMs, n, now) {
    const sorted = [...series].sort((a, b) => a.t - b.t);
    const lastT = sorted.length ? sorted[sorted.length - 1].t : Math.floor(now / stepMs) * stepMs;
    const end = Math.max(lastT, Math.floor(now / stepMs) * stepMs);
    const t0 = end - (n - 1) * stepMs;
    const byT = new Map(sorted.map((p) => [p.t, p]));
    const out = [];
    for (let i = 0; i < n; i += 1) {
      const t = t0 + i * stepMs;
      out.push(byT.get(t) || { t, requests: 0, errors: 0, p50_ms: null, p99_ms: null, overhead_p99_ms: null, empty: true });
    }
    return out;
  }

  function renderTrafficChart(container, steps, stepMs) {
    const sig = JSON.stringify([container.clientWidth, steps.map((s) => [s.t, s.requests, s.errors])]);
    if (!changed(container.id, sig)) return;
    const t0 = steps[0].t;
    const t1 = steps[steps.length - 1].t + stepMs;
    const maxReq = Math.max(0, ...steps.map((s) => num(s.requests)));
    const { top, ticks } = yAxis(maxReq, true);
    const f = timeFrame(container, { t0, t1, top, ticks, yFmt: fmtCompact });
    const bw = f.pw / steps.length;
    const barW = Math.max(1, bw * 0.72);
    const bars = svg('g');
    for (const s of steps) {
      const x = f.x(s.t) + (bw - barW) / 2;
      const req = num(s.requests);
      const errs = num(s.errors);
      if (req > 0) {
        const y = f.y(req);
        bars.appendChild(svg('rect', { x, y, width: barW, height: Math.max(1, f.y(0) - y), class: 'bar-req', rx: Math.min(2, barW / 3) }));
      }
      if (errs > 0) {
        const y = f.y(errs);
        bars.appendChild(svg('rect', { x, y, width: barW, height: Math.max(1, f.y(0) - y), class: 'bar-err', rx: Math.min(2, barW / 3) }));
      }
      const hit = svg('rect', { x: f.x(s.t), y: f.m.t, width: bw, height: f.ph, class: 'hit' });
      hit.appendChild(svg('title', { text: `${fmtClock(s.t, false)}  ${fmtInt(req)} requests, ${fmtInt(errs)} errors` }));
      bars.appendChild(hit);
    }
    f.root.appendChild(bars);
    clear(container);
    container.appendChild(f.root);
  }

  function renderLatencyChart(container, steps, stepMs) {
    const sig = JSON.stringify([container.clientWidth, steps.map((s) => [s.t, s.p50_ms, s.p99_ms, s.overhead_p99_ms])]);
    if (!changed(container.id, sig)) return;
    const t0 = steps[0].t;
    const t1 = steps[steps.length - 1].t + stepMs;
    const vals = steps.flatMap((s) => [s.p50_ms, s.p99_ms, s.overhead_p99_ms]).filter((v) => v !== null && v !== undefined);
    const { top, ticks } = yAxis(Math.max(0, ...vals.map(Number)), false);
    const f = timeFrame(container, { t0, t1, top, ticks, yFmt: axisMs });
    const half = stepMs / 2;
    const lines = svg('g');
    const drawLine = (key, cls) => {
      let d = '';
      let pen = false;
      steps.forEach((s, i) => {
        const v = s[key];
        if (v === null || v === undefined) {
          pen = false;
          return;
        }
        const x = f.x(s.t + half).toFixed(1);
        const y = f.y(Number(v)).toFixed(1);
        d += `${pen ? 'L' : 'M'}${x} ${y} `;
        const prev = steps[i - 1];
        const next = steps[i + 1];
        const alone = (!prev || prev[key] == null) && (!next || next[key] == null);
        if (alone) lines.appendChild(svg('circle', { cx: x, cy: y, r: 2.2, class: `dot ${cls}` }));
        pen = true;
      });
      if (d) lines.appendChild(svg('path', { d: d.trim(), class: `line ${cls}` }));
    };
    drawLine('overhead_p99_ms', 'line-ovh');
    drawLine('p50_ms', 'line-p50');
    drawLine('p99_ms', 'line-p99');
    const bw = f.pw / steps.length;
    for (const s of steps) {
      const hit = svg('rect', { x: f.x(s.t), y: f.m.t, width: bw, height: f.ph, class: 'hit' });
      const text = s.p50_ms == null && s.p99_ms == null
        ? `${fmtClock(s.t, false)}  no requests`
        : `${fmtClock(s.t, false)}  p50 ${fmtMs(s.p50_ms)}, p99 ${fmtMs(s.p99_ms)}, overhead p99 ${fmtMs(s.overhead_p99_ms)}`;
      hit.appendChild(svg('title', { text }));
      lines.appendChild(hit);
    }
    f.root.appendChild(lines);
    clear(container);
    container.appendChild(f.root);
  }

  // ---------------------------------------------------------------- shared table bits

  function shareCell(value, total) {
    const pct = total > 0 ? Math.max(0, Math.min(100, (value / total) * 100)) : 0;
    const fill = el('span', { class: 'share-fill' });
    fill.style.width = `${pct.toFixed(1)}%`;
    return el('td', { class: 'share-col', title: `${pct.toFixed(1)}%` }, el('span', { class: 'share' }, fill));
  }

  function syncGroupTable(table, emptySel, rows, label) {
    const total = rows.reduce((a, r) => a + num(r.cost_usd), 0);
    const totalReq = rows.reduce((a, r) => a + num(r.requests), 0);
    const sorted = [...rows].sort((a, b) => num(b.cost_usd) - num(a.cost_usd) || num(b.requests) - num(a.requests));
    syncChildren($('tbody', table), sorted.map((r) => ({ ...r, _total: total, _totalReq: totalReq })), (r) => r.group, (r) =>
      el('tr', null,
        el('td', { class: r.group === '' ? 'muted' : null, text: label ? label(r.group) : groupName(r.group) }),
        el('td', { class: 'num', text: fmtInt(r.requests) }),
        el('td', { class: 'num', text: fmtUsd(r.cost_usd) }),
        shareCell(r._total > 0 ? num(r.cost_usd) : num(r.requests), r._total > 0 ? r._total : r._totalReq)));
    show($(emptySel), rows.length === 0);
    show(table, rows.length > 0);
  }

  // ---------------------------------------------------------------- overview

  function renderOverview({ live, spend }) {
    const t = live.totals || {};
    const win = live.window || state.overviewWindow;
    for (const node of document.querySelectorAll('.win-label')) node.textContent = win;

    $('#ov-rps').textContent = fmtRate(t.rps);
    $('#ov-rps-sub').textContent = `average over ${win}`;
    const er = $('#ov-error-rate');
    er.textContent = fmtPct(t.error_rate);
    er.classList.toggle('warn', num(t.error_rate) > 0.01 && num(t.error_rate) <= 0.05);
    er.classList.toggle('bad', num(t.error_rate) > 0.05);
    $('#ov-error-rate-sub').textContent = `${fmtInt(t.errors)} errors`;
    $('#ov-p50').textContent = fmtMs(t.p50_ms);
    $('#ov-p99').textContent = fmtMs(t.p99_ms);
    $('#ov-overhead-p99').textContent = fmtMs(t.overhead_p99_ms);
    $('#ov-overhead-sub').textContent = t.overhead_p50_ms == null ? 'gateway time' : `p50 ${fmtMs(t.overhead_p50_ms)}`;
    const total = $('#total-requests');
    total.textContent = fmtInt(t.requests);
    total.dataset.value = String(Math.round(num(t.requests)));
    $('#ov-total-sub').textContent = `since ${fmtClock(num(live.now) - (win === '24h' ? 86400000 : 3600000), false)}`;
    $('#ov-cost-today').textContent = fmtUsd(spend.today && spend.today.cost_usd);
    $('#ov-cost-today-sub').textContent = `${fmtInt(spend.today && spend.today.requests)} requests`;
    $('#ov-cost-month').textContent = fmtUsd(spend.month && spend.month.cost_usd);
    $('#ov-cost-month-sub').textContent = `${fmtInt(spend.month && spend.month.requests)} requests`;

    const stepMs = num(live.step_seconds || 60) * 1000;
    const n = win === '24h' ? 96 : 60;
    const steps = regularSteps(live.series || [], stepMs, n, num(live.now) || Date.now());
    $('#ov-step-label').textContent = stepMs === 60000 ? 'minute' : stepMs === 900000 ? '15 minutes' : `${stepMs / 1000} s`;
    renderTrafficChart($('#chart-traffic'), steps, stepMs);
    renderLatencyChart($('#chart-latency'), steps, stepMs);

    // by service: live stats of the window joined with this month's cost
    const cost = new Map((spend.by_service || []).map((r) => [r.group, r]));
    const names = new Set([...(live.services || []).map((s) => s.service), ...cost.keys()]);
    const liveBy = new Map((live.services || []).map((s) => [s.service, s]));
    const rows = [...names].map((name) => {
      const s = liveBy.get(name) || null;
      const c = cost.get(name);
      return {
        name,
        requests: s ? s.requests : 0,
        errors: s ? s.errors : 0,
        rps: s ? s.rps : 0,
        error_rate: s ? s.error_rate : 0,
        p50_ms: s ? s.p50_ms : null,
        p99_ms: s ? s.p99_ms : null,
        overhead_p99_ms: s ? s.overhead_p99_ms : null,
        cost: c ? c.cost_usd : '0',
      };
    });
    rows.sort((a, b) => num(b.requests) - num(a.requests) || num(b.cost) - num(a.cost) || a.name.localeCompare(b.name));
    const table = $('#ov-services');
    syncChildren($('tbody', table), rows, (r) => r.name, (r) => {
      const errCls = num(r.error_rate) > 0.05 ? 'num bad' : num(r.error_rate) > 0.01 ? 'num warn' : 'num';
      const link = r.name ? el('a', { href: `#services/${encodeURIComponent(r.name)}`, text: r.name }) : el('span', { class: 'muted', text: '(none)' });
      return el('tr', null,
        el('td', null, link),
        el('td', { class: 'num', text: fmtInt(r.requests) }),
        el('td', { class: 'num', text: fmtRate(r.rps) }),
        el('td', { class: errCls, title: `${fmtInt(r.errors)} errors`, text: r.requests ? fmtPct(r.error_rate) : '—' }),
        el('td', { class: 'num', text: fmtMs(r.p50_ms) }),
        el('td', { class: 'num', text: fmtMs(r.p99_ms) }),
        el('td', { class: 'num', text: fmtMs(r.overhead_p99_ms) }),
        el('td', { class: 'num', text: fmtUsd(r.cost) }));
    });
    show($('#ov-services-empty'), rows.length === 0);
    show(table, rows.length > 0);

    syncGroupTable($('#ov-teams'), '#ov-teams-empty', spend.by_team || []);
  }

  // ---------------------------------------------------------------- services

  function healthOf(svc) {
    const ups = svc.upstreams || [];
    const healthy = ups.filter((u) => u.healthy).length;
    const cls = ups.length === 0 ? 'muted' : healthy === ups.length ? 'ok' : healthy === 0 ? 'bad' : 'warn';
    return { healthy, total: ups.length, cls, text: ups.length ? `${healthy}/${ups.length} healthy` : 'no upstreams' };
  }

  function lifecycleBadge(lc) {
    const cls = { production: 'ok', beta: 'info', experimental: 'info', deprecated: 'warn', retired: 'bad' }[lc] || 'neutral';
    return el('span', { class: `badge badge-${cls}`, text: lc || 'unknown' });
  }

  function contractCell(c) {
    if (!c) return el('span', { class: 'muted', text: 'none' });
    const drift = (c.drift || []).length;
    return el('span', { class: 'contract-cell' },
      el('span', { class: 'mono', text: `v${c.version}` }),
      el('span', { class: `badge badge-${c.validate === 'enforce' ? 'info' : 'neutral'}`, text: c.validate }),
      drift ? el('span', { class: 'badge badge-warn', text: `${fmtInt(drift)} drift` }) : el('span', { class: 'muted small', text: 'no drift' }));
  }

  function routeText(route) {
    if (!route) return '—';
    return `${route.host ? route.host : ''}${route.prefix || '/'}`;
  }

  function renderServices(list) {
    const q = $('#service-filter').value.trim().toLowerCase();
    const all = [...list].sort((a, b) => a.name.localeCompare(b.name));
    const rows = q
      ? all.filter((s) => [s.name, s.owner, s.lifecycle, ...(s.tags || [])].some((v) => String(v || '').toLowerCase().includes(q)))
      : all;
    $('#services-count').textContent = q ? `${rows.length} of ${all.length}` : `${all.length} service${all.length === 1 ? '' : 's'}`;
    const table = $('#services-table');
    const view = rows.map((s) => ({
      name: s.name,
      owner: s.owner,
      lifecycle: s.lifecycle,
      deprecated: Boolean(s.deprecation) && s.lifecycle !== 'deprecated',
      public: s.public,
      route: s.route,
      health: healthOf(s),
      contract: s.contract ? { version: s.contract.version, validate: s.contract.validate, drift: s.contract.drift } : null,
      callers: (s.callers || []).length,
    }));
    syncChildren($('tbody', table), view, (s) => s.name, (s) =>
      el('tr', null,
        el('td', null,
          el('a', { href: `#services/${encodeURIComponent(s.name)}`, class: 'strong', data: { service: s.name }, text: s.name }),
          s.public ? el('span', { class: 'badge badge-neutral', text: 'public' }) : null),
        el('td', { text: s.owner || '—' }),
        el('td', null, lifecycleBadge(s.lifecycle), s.deprecated ? el('span', { class: 'badge badge-warn', text: 'deprecated' }) : null),
        el('td', { class: 'mono small', text: routeText(s.route) }),
        el('td', null, el('span', { class: `health health-${s.health.cls}` }, el('span', { class: 'dot-status' }), s.health.text)),
        el('td', null, contractCell(s.contract)),
        el('td', { class: 'num', text: fmtInt(s.callers) })));
    show($('#services-empty'), all.length === 0);
    show(table, rows.length > 0 || all.length === 0);
  }

  function kvRow(dl, key, value) {
    dl.appendChild(el('dt', { text: key }));
    dl.appendChild(typeof value === 'object' && value !== null ? el('dd', null, value) : el('dd', { text: value }));
  }

  function safeLink(url) {
    try {
      const u = new URL(url, location.href);
      if (u.protocol === 'http:' || u.protocol === 'https:') {
        return el('a', { href: u.href, target: '_blank', rel: 'noopener noreferrer', text: url });
      }
    } catch (_) {
      // fall through to plain text
    }
    return el('span', { text: url });
  }

  function section(key, data, node, build) {
    if (!changed(key, JSON.stringify(data))) return;
    clear(node);
    build(node);
  }

  function renderServiceDetail(list, name) {
    const svc = list.find((s) => s.name === name);
    $('#sd-name').textContent = name;
    show($('#sd-missing'), !svc);
    show($('#sd-body'), Boolean(svc));
    if (!svc) {
      state.sigs.delete('sd-head');
      clear($('#sd-badges'));
      $('#sd-missing').textContent = `There is no service named “${name}” in the catalog.`;
      return;
    }
    const health = healthOf(svc);
    section('sd-head', [name, svc.lifecycle, svc.public, health.text, Boolean(svc.deprecation)], $('#sd-badges'), (n) => {
      n.appendChild(lifecycleBadge(svc.lifecycle));
      if (svc.deprecation && svc.lifecycle !== 'deprecated') n.appendChild(el('span', { class: 'badge badge-warn', text: 'deprecated' }));
      n.appendChild(el('span', { class: 'badge badge-neutral', text: svc.public ? 'public' : 'key required' }));
      n.appendChild(el('span', { class: `health health-${health.cls}` }, el('span', { class: 'dot-status' }), health.text));
    });

    show($('#sd-deprecation'), Boolean(svc.deprecation));
    section('sd-deprecation', [name, svc.deprecation], $('#sd-deprecation'), (n) => {
      const d = svc.deprecation;
      if (!d) return;
      const parts = [`Deprecated since ${fmtDate(num(d.since) * 1000)}`];
      if (d.sunset) parts.push(`sunset ${fmtDate(num(d.sunset) * 1000)}`);
      n.appendChild(el('div', { class: 'notice notice-warn' },
        el('strong', { text: parts.join(' · ') }),
        d.sunset && num(d.sunset) * 1000 < Date.now() ? el('span', { text: ' (sunset has passed)' }) : null,
        d.link ? el('span', null, ' · ', safeLink(d.link)) : null));
    });

    section('sd-about', [name, svc.owner, svc.description, svc.tags, svc.route, svc.public], $('#sd-about'), (dl) => {
      kvRow(dl, 'Name', el('span', { class: 'strong', text: svc.name }));
      kvRow(dl, 'Owner', svc.owner || '—');
      kvRow(dl, 'Description', svc.description || '—');
      const tags = el('span', { class: 'tags' });
      for (const t of svc.tags || []) tags.appendChild(el('span', { class: 'tag', text: t }));
      if (!(svc.tags || []).length) tags.appendChild(el('span', { class: 'muted', text: 'none' }));
      kvRow(dl, 'Tags', tags);
      kvRow(dl, 'Route', el('span', null,
        el('span', { class: 'mono', text: (svc.route && svc.route.prefix) || '/' }),
        svc.route && svc.route.host ? el('span', { class: 'muted', text: ` on host ${svc.route.host}` }) : null));
      kvRow(dl, 'Access', svc.public ? 'public (no key needed)' : 'API key required');
    });

    const ups = svc.upstreams || [];
    $('#sd-upstreams-summary').textContent = health.text;
    syncChildren($('#sd-upstreams tbody'), ups, (u) => u.url, (u) =>
      el('tr', { class: 'upstream', data: { healthy: Boolean(u.healthy) } },
        el('td', { class: 'mono', text: u.url }),
        el('td', null, el('span', { class: `health health-${u.healthy ? 'ok' : 'bad'}` }, el('span', { class: 'dot-status' }), u.healthy ? 'healthy' : 'unhealthy')),
        el('td', { class: 'num', text: fmtInt(u.in_flight) })));

    const c = svc.contract;
    $('#sd-contract-summary').textContent = c ? `${(c.operations || []).length} operations` : '';
    section('sd-contract', [name, c], $('#sd-contract'), (n) => {
      if (!c) {
        n.appendChild(el('p', { class: 'empty', text: 'No contract attached: requests are forwarded without validation.' }));
        return;
      }
      const meta = el('div', { class: 'meta-row' });
      const item = (label, value) => meta.appendChild(el('div', { class: 'meta-item' },
        el('div', { class: 'meta-label', text: label }),
        typeof value === 'object' ? el('div', { class: 'meta-value' }, value) : el('div', { class: 'meta-value', text: value })));
      item('File', el('span', { class: 'mono', text: c.path }));
      item('Version', el('span', { class: 'mono', text: c.version }));
      item('Hash', el('span', { class: 'mono', title: c.hash, text: String(c.hash || '').slice(0, 12) }));
      item('Validate', el('span', { class: `badge badge-${c.validate === 'enforce' ? 'info' : 'neutral'}`, text: c.validate }));
      item('Undocumented', el('span', { class: `badge badge-${c.undocumented === 'block' ? 'info' : 'neutral'}`, text: c.undocumented }));
      if (c.response_sample !== undefined && c.response_sample !== null) item('Response sample', fmtPct(c.response_sample));
      n.appendChild(meta);
      const ops = [...(c.operations || [])];
      if (!ops.length) {
        n.appendChild(el('p', { class: 'empty', text: 'The contract declares no operations.' }));
        return;
      }
      const tbody = el('tbody');
      for (const op of ops) {
        const viol = num(op.request_violations) + num(op.response_violations);
        tbody.appendChild(el('tr', { class: op.deprecated ? 'deprecated' : null },
          el('td', null, el('span', { class: `method method-${String(op.method).toLowerCase()}`, text: op.method })),
          el('td', { class: 'mono' }, el('span', { text: op.path }), op.deprecated ? el('span', { class: 'badge badge-warn', text: 'deprecated' }) : null),
          el('td', { class: 'mono muted', text: op.id || '' }),
          el('td', { class: 'num', text: fmtInt(op.requests) }),
          el('td', { class: `num ${num(op.request_violations) ? 'bad' : ''}`, text: fmtInt(op.request_violations) }),
          el('td', { class: `num ${num(op.response_violations) ? 'bad' : ''}`, text: fmtInt(op.response_violations) }),
          el('td', { class: 'num muted', title: op.last_seen ? fmtDateTime(op.last_seen) : '', text: op.last_seen ? fmtAgo(op.last_seen) : 'never' }),
          el('td', { class: 'sr-only', text: viol ? 'violations' : '' })));
      }
      n.appendChild(el('div', { class: 'table-wrap' }, el('table', { class: 'table', id: 'sd-operations' },
        el('thead', null, el('tr', null,
          el('th', { text: 'Method' }), el('th', { text: 'Path' }), el('th', { text: 'Operation' }),
          el('th', { class: 'num', text: 'Requests' }), el('th', { class: 'num', text: 'Request violations' }),
          el('th', { class: 'num', text: 'Response violations' }), el('th', { class: 'num', text: 'Last seen' }),
          el('th', { class: 'sr-only', text: 'Flag' }))),
        tbody)));
    });

    const drift = (c && c.drift) || [];
    $('#sd-drift-count').textContent = c ? `${fmtInt(drift.length)} example${drift.length === 1 ? '' : 's'}` : '';
    section('sd-drift', [name, Boolean(c), drift], $('#sd-drift'), (n) => {
      if (!c) {
        n.appendChild(el('p', { class: 'empty', text: 'No contract, so no drift is tracked.' }));
        return;
      }
      if (!drift.length) {
        n.appendChild(el('p', { class: 'empty', text: 'No drift seen: traffic matches the contract.' }));
        return;
      }
      const list = el('ul', { class: 'drift' });
      for (const d of drift) {
        const item = el('li');
        const head = el('div', { class: 'drift-head' },
          el('span', { class: 'mono strong', text: d.operation !== undefined ? String(d.operation) : '(unknown operation)' }),
          typeof d.at === 'number' ? el('span', { class: 'muted small', title: fmtDateTime(d.at), text: fmtAgo(d.at) }) : null);
        item.appendChild(head);
        if (d.detail !== undefined) item.appendChild(el('div', { class: 'drift-detail', text: String(d.detail) }));
        const extra = Object.entries(d).filter(([k]) => !['operation', 'detail', 'at'].includes(k));
        if (extra.length) {
          const dl = el('dl', { class: 'kv kv-compact' });
          for (const [k, v] of extra) kvRow(dl, k, typeof v === 'object' ? JSON.stringify(v) : String(v));
          item.appendChild(dl);
        }
        list.appendChild(item);
      }
      n.appendChild(list);
    });

    const callers = (svc.callers || []).map((r) => ({ group: r.team, requests: r.requests, cost_usd: r.cost_usd }));
    syncGroupTable($('#sd-callers'), '#sd-callers-empty', callers);
  }

  // ---------------------------------------------------------------- spend

  const PALETTE = 8;

  function renderSpend({ budgets, spend }) {
    $('#spend-summary').textContent =
      `today ${fmtUsd(spend.today && spend.today.cost_usd)} · ${fmtInt(spend.today && spend.today.requests)} req  —  ` +
      `this month ${fmtUsd(spend.month && spend.month.cost_usd)} · ${fmtInt(spend.month && spend.month.requests)} req`;

    const scopeOrder = { key: 0, team: 1, service: 2 };
    const sorted = [...budgets].sort((a, b) =>
      (scopeOrder[a.scope] ?? 9) - (scopeOrder[b.scope] ?? 9) || String(a.target).localeCompare(String(b.target)) || String(a.period).localeCompare(String(b.period)));
    const over = budgets.filter((b) => num(b.used_percent) >= 100).length;
    $('#budgets-summary').textContent = budgets.length
      ? `${budgets.length} budget${budgets.length === 1 ? '' : 's'}${over ? ` · ${over} exhausted` : ''}`
      : '';
    syncChildren($('#budgets'), sorted, (b) => `${b.scope}\u0000${b.target}\u0000${b.period}`, renderBudget);
    show($('#budgets-empty'), budgets.length === 0);

    renderHourly(spend);
    syncGroupTable($('#spend-consumers'), '#spend-consumers-empty', spend.top_consumers || []);
    syncGroupTable($('#spend-services'), '#spend-services-empty', spend.by_service || []);
  }

  function renderBudget(b) {
    const pct = num(b.used_percent);
    const level = pct >= 100 ? 'over' : pct >= 80 ? 'warn' : 'ok';
    const fill = el('div', { class: 'budget-fill' });
    fill.style.width = `${Math.max(0, Math.min(pct, 100))}%`;
    const track = el('div', { class: 'budget-track' }, fill);
    if (num(b.reserved_usd) > 0 && num(b.amount_usd) > 0) {
      const res = el('div', { class: 'budget-reserved', title: `${fmtUsd(b.reserved_usd)} reserved by requests in flight` });
      const start = Math.min(pct, 100);
      res.style.left = `${start}%`;
      res.style.width = `${Math.max(0, Math.min(100 - start, (num(b.reserved_usd) / num(b.amount_usd)) * 100))}%`;
      track.appendChild(res);
    }
    for (const a of b.alerts || []) {
      if (a <= 0 || a >= 100) continue;
      const mark = el('div', { class: 'budget-mark', title: `alert at ${a}%` });
      mark.style.left = `${a}%`;
      track.appendChild(mark);
    }
    const node = el('div', {
      class: `budget budget-${level}`,
      'data-scope': b.scope,
      'data-target': b.target,
      'data-used-percent': String(b.used_percent),
    },
    el('div', { class: 'budget-name' },
      el('span', { class: 'badge badge-neutral', text: b.scope }),
      el('span', { class: 'strong', title: b.target, text: b.target })),
    track,
    el('div', { class: 'budget-numbers' },
      el('span', { class: `budget-pct ${level}`, text: fmtPercent(pct) }),
      el('span', null, el('span', { class: 'strong', text: fmtUsd(b.spent_usd) }), el('span', { class: 'muted', text: ` / ${fmtUsd(b.amount_usd)}` }))),
    el('div', { class: 'budget-meta muted small' },
      el('span', { text: `per ${b.period}` }),
      el('span', { class: `badge badge-${b.mode === 'hard' ? 'bad' : 'neutral'}`, title: b.mode === 'hard' ? 'requests are refused once spent' : 'alerts only', text: b.mode }),
      el('span', { title: `period started ${fmtDateTime(num(b.period_start))}`, text: `${fmtUsd(b.remaining_usd)} left` })));
    return node;
  }

  function renderHourly(spend) {
    const container = $('#chart-hourly');
    const legend = $('#hourly-legend');
    const hourly = spend.hourly || { rows: [], step_seconds: 3600, from: num(spend.now) - 86400000 };
    const stepMs = num(hourly.step_seconds || 3600) * 1000;
    const now = num(spend.now) || Date.now();
    const t0 = Math.floor(num(hourly.from) / stepMs) * stepMs;
    const n = Math.max(1, Math.min(48, Math.floor((now - t0) / stepMs) + 1));
    const rows = hourly.rows || [];
    const sig = JSON.stringify([container.clientWidth, t0, n, rows]);
    if (!changed('chart-hourly', sig)) return;

    // services by total cost; the top 7 keep their colour, the rest are "other"
    const totals = new Map();
    for (const r of rows) totals.set(r.service, (totals.get(r.service) || 0) + num(r.cost_usd));
    const ranked = [...totals.entries()].sort((a, b) => b[1] - a[1] || String(a[0]).localeCompare(String(b[0]))).map(([s]) => s);
    const keep = ranked.slice(0, PALETTE - 1);
    const hasOther = ranked.length > keep.length;
    const series = hasOther ? [...keep, '\u0000other'] : keep;
    const colour = new Map(series.map((s, i) => [s, i]));
    const seriesName = (s) => (s === '\u0000other' ? 'other' : groupName(s));

    const buckets = Array.from({ length: n }, (_, i) => ({ t: t0 + i * stepMs, parts: new Map(), requests: 0 }));
    for (const r of rows) {
      const i = Math.round((num(r.t) - t0) / stepMs);
      if (i < 0 || i >= n) continue;
      const key = keep.includes(r.service) ? r.service : '\u0000other';
      const b = buckets[i];
      b.parts.set(key, (b.parts.get(key) || 0) + num(r.cost_usd));
      b.requests += num(r.requests);
    }
    const maxCost = Math.max(0, ...buckets.map((b) => [...b.parts.values()].reduce((a, v) => a + v, 0)));
    const { top, ticks } = yAxis(maxCost, false);
    const f = timeFrame(container, { t0, t1: t0 + n * stepMs, top, ticks, yFmt: fmtUsd });
    const bw = f.pw / n;
    const barW = Math.max(2, bw * 0.7);
    const g = svg('g');
    for (const b of buckets) {
      let acc = 0;
      const x = f.x(b.t) + (bw - barW) / 2;
      for (const s of series) {
        const v = b.parts.get(s) || 0;
        if (v <= 0) continue;
        const y1 = f.y(acc);
        const y2 = f.y(acc + v);
        acc += v;
        const rect = svg('rect', { x, y: y2, width: barW, height: Math.max(1, y1 - y2), class: `seg-fill c${colour.get(s)}` });
        rect.appendChild(svg('title', { text: `${fmtClock(b.t, false)}  ${seriesName(s)}: ${fmtUsd(v)}` }));
        g.appendChild(rect);
      }
      if (acc === 0) continue;
      const hit = svg('rect', { x: f.x(b.t), y: f.m.t, width: bw, height: Math.max(0, f.y(acc) - f.m.t), class: 'hit' });
      hit.appendChild(svg('title', { text: `${fmtClock(b.t, false)}–${fmtClock(b.t + stepMs, false)}  ${fmtUsd(acc)} · ${fmtInt(b.requests)} requests` }));
      g.appendChild(hit);
    }
    f.root.appendChild(g);
    if (rows.length === 0) {
      f.root.appendChild(svg('text', { x: f.m.l + f.pw / 2, y: f.m.t + f.ph / 2, 'text-anchor': 'middle', class: 'chart-empty', text: 'No metered traffic in the last 24 hours' }));
    }
    clear(container);
    container.appendChild(f.root);

    clear(legend);
    for (const s of series) {
      legend.appendChild(el('span', { class: `key c${colour.get(s)}` }));
      legend.appendChild(document.createTextNode(seriesName(s)));
    }
  }

  async function exportCsv() {
    const button = $('#export-csv');
    const group = $('#export-group').value;
    const now = new Date();
    const from = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1);
    const day = `${now.getUTCFullYear()}-${pad2(now.getUTCMonth() + 1)}-${pad2(now.getUTCDate())}`;
    button.disabled = true;
    button.textContent = 'Exporting…';
    try {
      const text = await api(`/v1/usage?group_by=${encodeURIComponent(group)}&from=${from}&format=csv`, { accept: 'text/csv' });
      const blob = new Blob([text], { type: 'text/csv;charset=utf-8' });
      const url = URL.createObjectURL(blob);
      const a = el('a', { href: url, download: `blastdoor-usage-${group}-${day}.csv`, class: 'sr-only' });
      document.body.appendChild(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60000);
      clearBanner('export');
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) {
        expireSession();
        return;
      }
      showBanner(err, 'export');
    } finally {
      button.disabled = false;
      button.textContent = 'Export CSV';
    }
  }

  // ---------------------------------------------------------------- map

  function bezierPoint(p0, p1, p2, p3, t) {
    const u = 1 - t;
    return u * u * u * p0 + 3 * u * u * t * p1 + 3 * u * t * t * p2 + t * t * t * p3;
  }

  function truncate(s, max) {
    return s.length > max ? `${s.slice(0, max - 1)}…` : s;
  }

  function renderMap(g) {
    const wrap = $('#map-wrap');
    const root = $('#map-svg');
    const nodes = g.nodes || [];
    const edges = (g.edges || []).filter((e) => num(e.requests) > 0 || num(e.cost_usd) > 0);
    const W = Math.max(560, Math.floor(wrap.clientWidth - 32));
    const sig = JSON.stringify([W, nodes, edges]);
    const totalReq = edges.reduce((a, e) => a + num(e.requests), 0);
    const totalCost = edges.reduce((a, e) => a + num(e.cost_usd), 0);
    $('#map-summary').textContent = edges.length
      ? `${fmtInt(totalReq)} requests · ${fmtUsd(totalCost)} · ${g.from ? `${fmtDateTime(g.from)} → ${fmtDateTime(g.to)}` : ''}`
      : '';
    const empty = $('#map-empty');
    empty.textContent = `No traffic between teams and services in the last ${g.window || state.mapWindow}.`;
    show(empty, edges.length === 0);
    show(root, edges.length > 0);
    if (!changed('map', sig)) return;
    clear(root);
    if (!edges.length) return;

    const byId = new Map(nodes.map((n) => [n.id, n]));
    // nodes that only appear in edges still get drawn
    for (const e of edges) {
      for (const id of [e.from, e.to]) {
        if (!byId.has(id)) {
          const kind = String(id).startsWith('service:') ? 'service' : 'team';
          byId.set(id, { id, kind, label: String(id).replace(/^[a-z]+:/, '') });
        }
      }
    }
    const all = [...byId.values()];
    const weight = new Map();
    for (const e of edges) {
      weight.set(e.from, (weight.get(e.from) || 0) + num(e.requests));
      weight.set(e.to, (weight.get(e.to) || 0) + num(e.requests));
    }
    const left = all.filter((n) => n.kind !== 'service')
      .sort((a, b) => (weight.get(b.id) || 0) - (weight.get(a.id) || 0) || String(a.label).localeCompare(String(b.label)));
    const leftIndex = new Map(left.map((n, i) => [n.id, i]));
    // services ordered by the weighted mean position of their callers (fewer crossings)
    const bary = new Map();
    for (const n of all) {
      if (n.kind !== 'service') continue;
      let s = 0;
      let w = 0;
      for (const e of edges) {
        if (e.to !== n.id || !leftIndex.has(e.from)) continue;
        s += leftIndex.get(e.from) * num(e.requests);
        w += num(e.requests);
      }
      bary.set(n.id, w > 0 ? s / w : Infinity);
    }
    const right = all.filter((n) => n.kind === 'service')
      .sort((a, b) => bary.get(a.id) - bary.get(b.id) || String(a.label).localeCompare(String(b.label)));

    const nodeW = Math.round(Math.min(200, Math.max(130, W * 0.2)));
    const nodeH = 32;
    const headH = 28;
    const rowsN = Math.max(left.length, right.length, 1);
    const gap = Math.round(Math.min(44, 16 + 5 * Math.max(0, edges.length / rowsN - 1)));
    const colH = (k) => k * nodeH + (k - 1) * gap;
    const H = headH + colH(rowsN) + 16;
    const pos = new Map();
    const place = (list, x) => {
      const offset = headH + (colH(rowsN) - colH(list.length)) / 2;
      list.forEach((n, i) => pos.set(n.id, { x, y: offset + i * (nodeH + gap), n }));
    };
    const lx = 8;
    const rx = W - nodeW - 8;
    place(left, lx);
    place(right, rx);

    root.setAttribute('width', W);
    root.setAttribute('height', H);
    root.setAttribute('viewBox', `0 0 ${W} ${H}`);
    root.appendChild(svg('text', { x: lx, y: 14, class: 'map-head', text: 'Teams' }));
    root.appendChild(svg('text', { x: rx + nodeW, y: 14, 'text-anchor': 'end', class: 'map-head', text: 'Services' }));

    const maxReq = Math.max(1, ...edges.map((e) => num(e.requests)));
    const edgeLayer = svg('g', { class: 'edges' });
    const labelLayer = svg('g', { class: 'edge-labels' });
    const placed = [];
    const labels = [];
    const collides = (box) => placed.some((p) => box.x1 < p.x2 && box.x2 > p.x1 && box.y1 < p.y2 && box.y2 > p.y1);
    const ordered = [...edges].sort((a, b) => num(b.requests) - num(a.requests));
    for (const e of ordered) {
      const a = pos.get(e.from);
      const b = pos.get(e.to);
      if (!a || !b) continue;
      const x1 = a.x + nodeW;
      const y1 = a.y + nodeH / 2;
      const x2 = b.x;
      const y2 = b.y + nodeH / 2;
      const cx = (x1 + x2) / 2;
      const width = 1.5 + 9 * Math.sqrt(num(e.requests) / maxReq);
      const path = svg('path', {
        d: `M${x1} ${y1} C${cx} ${y1} ${cx} ${y2} ${x2} ${y2}`,
        class: `edge c${leftIndex.has(e.from) ? leftIndex.get(e.from) % PALETTE : PALETTE - 1}`,
        'data-from': e.from,
        'data-to': e.to,
        'stroke-width': width.toFixed(2),
      });
      const label = `${fmtRate(e.per_minute)}/min · ${fmtUsd(e.cost_usd)}`;
      path.appendChild(svg('title', {
        text: `${a.n.label} → ${b.n.label}: ${fmtInt(e.requests)} requests, ${fmtRate(e.per_minute)}/min, ${fmtUsd(e.cost_usd)}`,
      }));
      edgeLayer.appendChild(path);

      const lw = label.length * 6.2 + 8;
      const lh = 14;
      let best = null;
      for (const t of [0.5, 0.38, 0.62, 0.28, 0.72, 0.44, 0.56]) {
        const px = bezierPoint(x1, cx, cx, x2, t);
        const py = bezierPoint(y1, y1, y2, y2, t);
        const box = { x1: px - lw / 2, x2: px + lw / 2, y1: py - lh / 2, y2: py + lh / 2, px, py };
        if (!collides(box)) {
          best = box;
          break;
        }
        if (!best) best = box;
      }
      placed.push(best);
      labels.push({ best, label, e, lw, lh });
    }
    root.appendChild(edgeLayer);
    root.appendChild(labelLayer);
    for (const { best, label, e, lw, lh } of labels) {
      const bg = svg('rect', { class: 'edge-label-bg', rx: 3, ry: 3, x: (best.px - lw / 2).toFixed(1), y: (best.py - lh / 2).toFixed(1), width: lw.toFixed(1), height: lh });
      const text = svg('text', {
        x: best.px.toFixed(1),
        y: (best.py + 3.5).toFixed(1),
        'text-anchor': 'middle',
        class: 'edge-label',
        'data-from': e.from,
        'data-to': e.to,
        text: label,
      });
      labelLayer.appendChild(bg);
      labelLayer.appendChild(text);
      try {
        const bb = text.getBBox(); // exact size once laid out
        if (bb.width > 0) {
          bg.setAttribute('x', (bb.x - 4).toFixed(1));
          bg.setAttribute('width', (bb.width + 8).toFixed(1));
          bg.setAttribute('y', (bb.y - 1).toFixed(1));
          bg.setAttribute('height', (bb.height + 2).toFixed(1));
        }
      } catch (_) {
        // not laid out (hidden): keep the estimate
      }
    }

    const nodeLayer = svg('g', { class: 'nodes' });
    for (const { x, y, n } of pos.values()) {
      const isSvc = n.kind === 'service';
      const label = n.label === '' || n.label == null ? '(none)' : String(n.label);
      const maxChars = Math.floor((nodeW - 56) / 7);
      const gNode = svg('g', { class: `node node-${isSvc ? 'service' : 'team'}`, 'data-id': n.id, transform: `translate(${x} ${y})` });
      gNode.appendChild(svg('rect', { width: nodeW, height: nodeH, rx: 7, ry: 7 }));
      if (!isSvc) gNode.appendChild(svg('rect', { x: 0, y: 7, width: 3, height: nodeH - 14, rx: 1.5, class: `stripe c${leftIndex.get(n.id) % PALETTE}` }));
      gNode.appendChild(svg('text', { x: 10, y: nodeH / 2 + 4, class: 'node-label', text: truncate(label, maxChars) }));
      gNode.appendChild(svg('text', { x: nodeW - 10, y: nodeH / 2 + 4, 'text-anchor': 'end', class: 'node-count', text: fmtCompact(weight.get(n.id) || 0) }));
      gNode.appendChild(svg('title', { text: `${isSvc ? 'service' : n.kind} ${label}: ${fmtInt(weight.get(n.id) || 0)} requests` }));
      if (isSvc) {
        const link = svg('a', { href: `#services/${encodeURIComponent(String(n.id).replace(/^service:/, ''))}` });
        link.appendChild(gNode);
        nodeLayer.appendChild(link);
      } else nodeLayer.appendChild(gNode);
    }
    root.appendChild(nodeLayer);
  }

  // ---------------------------------------------------------------- start

  function init() {
    $('#login-form').addEventListener('submit', onLogin);
    $('#logout').addEventListener('click', onLogout);
    $('#error-dismiss').addEventListener('click', () => clearBanner());
    $('#export-csv').addEventListener('click', exportCsv);
    $('#service-filter').addEventListener('input', () => {
      if (state.services) renderServices(state.services);
    });
    window.addEventListener('hashchange', onRoute);
    window.addEventListener('resize', onResize);
    document.addEventListener('visibilitychange', onVisibility);
    setupSegmented('#overview-window', () => state.overviewWindow, (w) => { state.overviewWindow = w; });
    setupSegmented('#map-window', () => state.mapWindow, (w) => { state.mapWindow = w; });
    if (state.token) showApp();
    else showLogin('');
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
  else init();
})();
