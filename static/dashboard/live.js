/* Live job updates: websocket messages -> DOM. No build step, no dependencies but htmx.
 *
 * [data-job-stream="<id>"] panels follow /ws/jobs/<id>/ (job.snapshot, job.progress, job.log,
 * job.status); [data-jobs-stream] lists follow /ws/jobs/ and are refreshed by htmx on any status
 * change. While a socket is open its panels carry data-live="on", which switches their htmx
 * polling off; when it closes, polling takes over and the socket reconnects with backoff.
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

  function formatBytes(bytes) {
    const units = ["bytes", "KB", "MB", "GB", "TB"];
    let value = bytes;
    let unit = 0;
    while (value >= 1024 && unit < units.length - 1) {
      value /= 1024;
      unit += 1;
    }
    return unit === 0 ? `${value} bytes` : `${value.toFixed(1)} ${units[unit]}`;
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
      const follow = list.scrollTop + list.clientHeight >= list.scrollHeight - 4;
      list.append(item);
      while (list.childElementCount > MAX_LOG_LINES) list.firstElementChild.remove();
      if (follow) list.scrollTop = list.scrollHeight;
    });
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
          document.body.dispatchEvent(new CustomEvent("hyper:jobs-changed", { detail: message }));
        }
      },
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
    if (document.querySelector("[data-jobs-stream]")) followAllJobs();
  }

  // What tests and curious operators can look at: which streams are open, messages by type.
  window.hyperLive = {
    streams: () =>
      Object.fromEntries(
        [...streams].map(([key, s]) => [key, { open: !!s.socket && s.socket.readyState === 1, received: s.received }])
      ),
  };

  document.addEventListener("DOMContentLoaded", () => {
    if (window.htmx) htmx.onLoad(scan);
    else scan(document);
  });
})();
