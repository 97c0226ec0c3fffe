/* Live job updates: websocket messages -> DOM. No build step, no dependencies but htmx.
 *
 * [data-job-stream="<id>"] panels follow /ws/jobs/<id>/ (job.snapshot, job.progress, job.log,
 * job.status); [data-jobs-stream] lists follow /ws/jobs/ and are fetched again on any status
 * change. While a socket is open its panels carry data-live="on", which switches their htmx
 * polling off; when it closes, polling takes over and the socket reconnects with backoff.
 * Log boxes ([data-job-logs]) follow their tail unless the reader scrolled up.
 */
(function () {
  "use strict";

  const FINISHED = new Set(["completed", "failed", "cancelled"]);
  const GIVE_UP = new Set([4401, 4404]); // not logged in / no such job: polling shows why
  const MAX_LOG_LINES = 2000;
  const streams = new Map(); // key ("job:<id>" or "jobs") -> stream state

  function socketUrl(path) {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    return `${scheme}//${location.host}${path}`;
  }

  function panelsOf(jobId) {
    return document.querySelectorAll(`[data-job-stream="${CSS.escape(jobId)}"]`);
  }

  function open(key, path, handlers) {
    const state = streams.get(key) || { delay: 1000, socket: null, done: false, received: {} };
    streams.set(key, state);
    let socket;
    try {
      socket = new WebSocket(socketUrl(path));
    } catch (error) {
      retry(key, path, handlers);
      return;
    }
    state.socket = socket;
    socket.addEventListener("open", () => {
      state.delay = 1000;
      handlers.live(true);
    });
    socket.addEventListener("message", (event) => {
      const message = JSON.parse(event.data);
      state.received[message.type] = (state.received[message.type] || 0) + 1;
      handlers.message(message);
    });
    socket.addEventListener("close", (event) => {
      state.socket = null;
      handlers.live(false);
      if (state.done || GIVE_UP.has(event.code)) return;
      retry(key, path, handlers);
    });
  }

  function retry(key, path, handlers) {
    const state = streams.get(key);
    const delay = state.delay;
    state.delay = Math.min(delay * 2, 30000);
    setTimeout(() => {
      if (handlers.wanted()) open(key, path, handlers);
      else streams.delete(key);
    }, delay + Math.random() * 250);
  }

  // ---- one job ---------------------------------------------------------------------------
  function setText(panel, field, text) {
    const element = panel.querySelector(`[data-field="${field}"]`);
    if (element && element.textContent !== text) element.textContent = text;
  }

  // hypersdk.lib.units.human_size, to the character (IEC units: tests compare the two).
  function formatBytes(bytes) {
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let value = Number(bytes) || 0;
    for (let unit = 0; unit < units.length; unit += 1) {
      if (Math.abs(value) < 1024 || unit === units.length - 1) {
        return unit === 0 ? `${pythonRound(value, 0)} B` : `${pythonRound(value, 1)} ${units[unit]}`;
      }
      value /= 1024;
    }
    return "";
  }

  // Python's f"{x:.Nf}": the double rounded to N decimals, an exact tie to the even digit
  // (toFixed takes a tie up: 1280 B is "1.2 KiB" in Python, "1.3" by toFixed).
  function pythonRound(value, digits) {
    const [whole, fraction] = Math.abs(value).toFixed(100).split("."); // the double, exactly
    if (!/^50*$/.test(fraction.slice(digits))) return value.toFixed(digits);
    const kept = `${whole}${fraction.slice(0, digits)}`;
    const last = Number(kept.slice(-1));
    const rounded = (BigInt(kept) + (last % 2 === 0 ? 0n : 1n)).toString().padStart(digits + 1, "0");
    const text = digits ? `${rounded.slice(0, -digits)}.${rounded.slice(-digits)}` : rounded;
    return value < 0 ? `-${text}` : text;
  }

  // As hypersdk/lib/units.py human_duration: "4.2s", "3m 5s", "2h 1m", "1d 3h".
  function formatDuration(seconds) {
    if (seconds < 60) return `${seconds.toFixed(1)}s`;
    const whole = Math.floor(seconds);
    const [days, hours, minutes, secs] = [
      Math.floor(whole / 86400),
      Math.floor(whole / 3600) % 24,
      Math.floor(whole / 60) % 60,
      whole % 60,
    ];
    if (days) return `${days}d ${hours}h`;
    if (hours) return `${hours}h ${minutes}m`;
    return `${minutes}m ${secs}s`;
  }

  function showProgress(jobId, progress) {
    panelsOf(jobId).forEach((panel) => {
      if (FINISHED.has(panel.dataset.status)) return;
      const percent = Math.max(0, Math.min(100, Number(progress.percent) || 0));
      const bar = panel.querySelector('[data-field="progress"]');
      if (bar) bar.value = percent;
      setText(panel, "percent", `${percent.toFixed(1)}%`);
      if (progress.phase) setText(panel, "phase", progress.phase);
      // The phase's transfer rate, and the whole run's estimated time left.
      setText(panel, "rate", progress.rate_bps ? `${formatBytes(progress.rate_bps)}/s` : "");
      const eta = progress.eta_seconds;
      setText(panel, "eta", eta === null || eta === undefined ? "" : `ETA ${formatDuration(eta)}`);
      if (progress.bytes_total) {
        const file = progress.current_file ? ` · ${progress.current_file}` : "";
        setText(panel, "transfer", `${formatBytes(progress.bytes_done)} of ${formatBytes(progress.bytes_total)}${file}`);
      }
    });
  }

  function showStatus(jobId, status, error) {
    panelsOf(jobId).forEach((panel) => {
      panel.dataset.status = status;
      const badge = panel.querySelector('[data-field="status"]');
      if (badge) {
        badge.textContent = status;
        badge.className = `badge badge-${status}`;
      }
      if (FINISHED.has(status)) {
        setText(panel, "rate", "");
        setText(panel, "eta", "");
      }
      if (status === "completed") {
        const bar = panel.querySelector('[data-field="progress"]');
        if (bar) bar.value = 100;
        setText(panel, "percent", "100.0%");
      }
      const errorLine = panel.querySelector('[data-field="error"]');
      if (errorLine) {
        errorLine.textContent = error || "";
        errorLine.hidden = !error;
      }
    });
  }

  function alreadyShown(list, entry) {
    if (entry.id) return list.querySelector(`[data-log-id="${entry.id}"]`) !== null;
    return [...list.children].slice(-50).some((item) => item.textContent.endsWith(` ${entry.message}`));
  }

  function appendLog(jobId, entry, replaying = false) {
    document.querySelectorAll(`[data-job-logs="${CSS.escape(jobId)}"]`).forEach((list) => {
      if ((entry.id || replaying) && alreadyShown(list, entry)) return;
      const item = document.createElement("li");
      item.className = `log-${entry.level || "info"}`;
      if (entry.id) item.dataset.logId = entry.id;
      const at = entry.at ? new Date(entry.at) : new Date();
      const time = document.createElement("time");
      time.dateTime = at.toISOString();
      time.textContent = at.toTimeString().slice(0, 8);
      item.append(time, ` ${entry.message}`);
      list.append(item);
      while (list.childElementCount > MAX_LOG_LINES) list.firstElementChild.remove();
      if (!logsReadAt.has(jobId)) list.scrollTop = list.scrollHeight;
    });
  }

  // ---- log boxes follow the tail, unless the reader scrolled up ------------------------------
  // Where a reader left each job's log (absent: following the tail). Kept across re-renders of
  // the panel, which replace the box.
  const logsReadAt = new Map();

  function atTail(list) {
    return list.scrollTop + list.clientHeight >= list.scrollHeight - 4;
  }

  function followLog(list) {
    if (list.dataset.follows) return;
    list.dataset.follows = "tail";
    const jobId = list.dataset.jobLogs;
    if (logsReadAt.has(jobId)) list.scrollTop = logsReadAt.get(jobId);
    else list.scrollTop = list.scrollHeight;
    list.addEventListener(
      "scroll",
      () => {
        if (atTail(list)) logsReadAt.delete(jobId);
        else logsReadAt.set(jobId, list.scrollTop);
        list.dataset.follows = logsReadAt.has(jobId) ? "reader" : "tail";
      },
      { passive: true }
    );
  }

  // Re-render the panels from the server: after (re)connecting, lines logged while no socket
  // was listening are in the database; once finished, the final state is. Messages arriving
  // while the request is in flight are replayed onto the new panel (log lines unless shown).
  function refresh(jobId, { onlyWithLogs = false } = {}) {
    if (!window.htmx) return;
    const state = streams.get(`job:${jobId}`);
    panelsOf(jobId).forEach((panel) => {
      if (!panel.dataset.src || (onlyWithLogs && !panel.querySelector("[data-job-logs]"))) return;
      if (state) state.replay = [];
      htmx.ajax("GET", panel.dataset.src, { target: panel, swap: "outerHTML" }).then(() => {
        const pending = state ? state.replay || [] : [];
        if (state) state.replay = null;
        pending.forEach((message) => apply(jobId, message, true));
      });
    });
  }

  function followJob(jobId) {
    const key = `job:${jobId}`;
    if (streams.has(key)) {
      const state = streams.get(key);
      if (state.socket && state.socket.readyState === WebSocket.OPEN) markLive(jobId, true);
      return;
    }
    open(key, `/ws/jobs/${encodeURIComponent(jobId)}/`, {
      wanted: () => panelsOf(jobId).length > 0,
      live: (on) => markLive(jobId, on),
      message: (message) => apply(jobId, message, false),
    });
  }

  function apply(jobId, message, replaying) {
    const state = streams.get(`job:${jobId}`);
    if (!replaying && state && state.replay && message.type !== "job.snapshot") state.replay.push(message);
    const data = message.data || {};
    switch (message.type) {
      case "job.snapshot":
        showStatus(jobId, data.status, data.error);
        if (data.progress) showProgress(jobId, data.progress);
        if (FINISHED.has(data.status)) finish(jobId);
        else refresh(jobId, { onlyWithLogs: true });
        break;
      case "job.progress":
        showProgress(jobId, data);
        break;
      case "job.log":
        appendLog(jobId, data, replaying);
        break;
      case "job.status":
        showStatus(jobId, data.status, data.error);
        if (FINISHED.has(data.status) && !replaying) finish(jobId);
        break;
    }
  }

  function markLive(jobId, on) {
    panelsOf(jobId).forEach((panel) => {
      panel.dataset.live = on ? "on" : "off";
    });
  }

  function finish(jobId) {
    if (finishedSeen.has(jobId)) return;
    finishedSeen.add(jobId);
    const state = streams.get(`job:${jobId}`);
    if (state) {
      state.done = true;
      if (state.socket) state.socket.close(1000);
    }
    refresh(jobId);
    document.body.dispatchEvent(new CustomEvent("hyper:job-finished", { detail: { jobId } }));
  }

  // ---- every job's status changes (lists) -------------------------------------------------
  function followAllJobs() {
    const state = streams.get("jobs");
    if (state) return;
    open("jobs", "/ws/jobs/", {
      wanted: () => document.querySelector("[data-jobs-stream]") !== null,
      live: (on) => {
        document.body.dataset.jobsLive = on ? "on" : "off";
      },
      message: (message) => {
        if (message.type === "job.status") {
          refreshLists();
          document.body.dispatchEvent(new CustomEvent("hyper:jobs-changed", { detail: message }));
        }
      },
    });
  }

  // The lists and numbers that follow every job ([data-jobs-stream] with an id and an hx-get):
  // one request per list at a time, then one more if a change came meanwhile, so the last
  // change always shows. An htmx trigger would lose it: it drops a request while one is in
  // flight, and a queued one is dropped with the element the response swaps out.
  const listRefreshes = new Map(); // list id -> whether another change came during its request

  function refreshLists() {
    document.querySelectorAll("[data-jobs-stream][id][hx-get]").forEach((list) => refreshList(list.id));
  }

  function refreshList(id) {
    if (listRefreshes.has(id)) {
      listRefreshes.set(id, true);
      return;
    }
    const list = document.getElementById(id);
    if (!list || !window.htmx) return;
    listRefreshes.set(id, false);
    const headers = { "HX-Request": "true", "HX-Current-URL": location.href };
    fetch(list.getAttribute("hx-get"), { headers, credentials: "same-origin" })
      .then((response) => {
        const login = response.headers.get("HX-Redirect");
        if (login) location.href = login;
        return response.ok && !login ? response.text() : null;
      })
      .then((html) => {
        const current = document.getElementById(id);
        if (html !== null && current) htmx.swap(current, html, { swapStyle: "outerHTML" });
      })
      .catch(() => {}) // offline for a moment: the next change or the polling catches up
      .finally(() => {
        const again = listRefreshes.get(id);
        listRefreshes.delete(id);
        if (again) refreshList(id);
      });
  }

  // A job seen finished: its panels and the sections that wait for it were refreshed once.
  const finishedSeen = new Set();
  let firstScan = true;

  function scan(root) {
    const scope = root && root.querySelectorAll ? root : document;
    const panels = [...scope.querySelectorAll("[data-job-stream]")];
    if (scope.matches && scope.matches("[data-job-stream]")) panels.push(scope);
    panels.forEach((panel) => {
      const jobId = panel.dataset.jobStream;
      if (!FINISHED.has(panel.dataset.status)) followJob(jobId);
      else if (firstScan) finishedSeen.add(jobId);
      else if (!finishedSeen.has(jobId)) {
        // Finished while we were polling (no websocket): tell the sections that wait for it.
        finishedSeen.add(jobId);
        document.body.dispatchEvent(new CustomEvent("hyper:job-finished", { detail: { jobId } }));
      }
    });
    firstScan = false;
    const logs = [...scope.querySelectorAll("[data-job-logs]")];
    if (scope.matches && scope.matches("[data-job-logs]")) logs.push(scope);
    logs.forEach(followLog);
    if (document.querySelector("[data-jobs-stream]")) followAllJobs();
  }

  // What tests and curious operators can look at: which streams are open, messages by type.
  window.hyperLive = {
    formatBytes,
    streams: () =>
      Object.fromEntries(
        [...streams].map(([key, s]) => [key, { open: !!s.socket && s.socket.readyState === 1, received: s.received }])
      ),
  };

  document.addEventListener("DOMContentLoaded", () => {
    if (window.htmx) htmx.onLoad(scan);
    else scan(document);
  });
  // A re-rendered panel's new log box, scrolled to where the old one was at once, not after
  // htmx's settle delay (onLoad): the box never shows its top for a moment.
  document.addEventListener("htmx:afterSwap", () => {
    document.querySelectorAll("[data-job-logs]:not([data-follows])").forEach(followLog);
  });
})();
