// Tenantry console: the little script the pages need, written here, no framework.
// - Virtual lists (.vlist): only the rows in view are in the document; the next cursor page
//   is fetched as the end comes near. Keys: Up/Down, PageUp/PageDown, Home/End move through
//   the rows, Enter opens one.
// - Live regions ([data-poll]): a fragment fetched again every few seconds until it says it
//   is done (a running sync's progress).
"use strict";

(function () {
  const OVERSCAN = 8; // rows kept above and below the visible ones
  const PREFETCH = 40; // rows from the end at which the next page is asked for

  function vlist(root) {
    const viewport = root.querySelector(".vlist-viewport");
    const status = root.querySelector(".vlist-status");
    const dataBlock = root.querySelector(".vlist-data");
    if (!viewport || !dataBlock) return;
    let first;
    try { first = JSON.parse(dataBlock.textContent); } catch (e) { return; }
    const rows = first.rows.slice();
    let next = first.next_cursor;
    let loading = false;
    let active = -1; // the row keyboard focus is on
    const source = root.dataset.source;
    if (rows.length === 0) return; // the server's "nothing here" stays
    root.classList.add("live");
    const probe = viewport.querySelector(".vlist-row");
    const rowHeight = probe ? probe.getBoundingClientRect().height || 44 : 44;
    viewport.textContent = "";
    const spacer = document.createElement("div");
    spacer.className = "vlist-spacer";
    viewport.appendChild(spacer);
    const shown = new Map(); // index -> element

    function say() {
      status.textContent = rows.length + (next ? "+ rows (scroll for more)" : " rows");
    }

    function make(i) {
      const row = rows[i];
      const a = document.createElement("a");
      a.className = "vlist-row";
      a.href = row.href;
      a.setAttribute("role", "row");
      a.setAttribute("aria-rowindex", String(i + 1));
      a.tabIndex = -1;
      for (const cell of row.cells) {
        const span = document.createElement("span");
        span.setAttribute("role", "cell");
        span.textContent = cell; // text only: nothing the server sends becomes markup
        a.appendChild(span);
      }
      a.style.top = i * rowHeight + "px";
      return a;
    }

    function render() {
      spacer.style.height = rows.length * rowHeight + "px";
      const top = viewport.scrollTop;
      const from = Math.max(0, Math.floor(top / rowHeight) - OVERSCAN);
      const to = Math.min(rows.length, Math.ceil((top + viewport.clientHeight) / rowHeight) + OVERSCAN);
      for (const [i, el] of shown) {
        if ((i < from || i >= to) && i !== active) { el.remove(); shown.delete(i); }
      }
      for (let i = from; i < to; i++) {
        if (!shown.has(i)) { const el = make(i); shown.set(i, el); viewport.appendChild(el); }
      }
      if (next && !loading && to >= rows.length - PREFETCH) more();
    }

    async function more() {
      loading = true;
      status.textContent = "Loading…";
      const url = source + (source.includes("?") ? "&" : "?") + "cursor=" + encodeURIComponent(next);
      try {
        const answer = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
        if (answer.status === 401) { window.location.assign("/console/sign-in?next=" + encodeURIComponent(location.pathname + location.search)); return; }
        if (!answer.ok) throw new Error("HTTP " + answer.status);
        const page = await answer.json();
        rows.push(...page.rows);
        next = page.next_cursor;
        loading = false;
        say();
        render();
      } catch (e) {
        loading = false;
        status.textContent = "Could not load more rows (" + e.message + "); scroll to try again.";
      }
    }

    function focusRow(i) {
      if (rows.length === 0) return;
      active = Math.max(0, Math.min(rows.length - 1, i));
      const top = active * rowHeight;
      if (top < viewport.scrollTop) viewport.scrollTop = top;
      else if (top + rowHeight > viewport.scrollTop + viewport.clientHeight) {
        viewport.scrollTop = top + rowHeight - viewport.clientHeight;
      }
      render();
      const el = shown.get(active) || make(active);
      if (!shown.has(active)) { shown.set(active, el); viewport.appendChild(el); }
      el.focus({ preventScroll: true });
    }

    viewport.addEventListener("scroll", () => window.requestAnimationFrame(render), { passive: true });
    window.addEventListener("resize", () => window.requestAnimationFrame(render));
    viewport.addEventListener("keydown", (event) => {
      const page = Math.max(1, Math.floor(viewport.clientHeight / rowHeight) - 1);
      const moves = { ArrowDown: 1, ArrowUp: -1, PageDown: page, PageUp: -page };
      if (event.key in moves) focusRow((active < 0 ? -1 : active) + moves[event.key]);
      else if (event.key === "Home") focusRow(0);
      else if (event.key === "End") focusRow(rows.length - 1);
      else return;
      event.preventDefault();
    });
    say();
    render();
  }

  function poll(el) {
    const url = el.dataset.poll;
    const every = Number(el.dataset.every || 1000);
    async function tick() {
      try {
        const answer = await fetch(url, { headers: { Accept: "text/html" }, credentials: "same-origin" });
        if (answer.redirected && new URL(answer.url).pathname === "/console/sign-in") {
          // the session ended: sign in again, then back to this page (not the fragment)
          window.location.assign("/console/sign-in?next=" + encodeURIComponent(location.pathname + location.search));
          return;
        }
        if (answer.ok) {
          el.innerHTML = await answer.text(); // our own server's fragment, escaped by Jinja2
          if (el.querySelector("[data-done]")) return;
        }
      } catch (e) { /* the next tick tries again */ }
      window.setTimeout(tick, every);
    }
    if (!el.querySelector("[data-done]")) window.setTimeout(tick, every);
  }

  document.addEventListener("DOMContentLoaded", () => {
    document.querySelectorAll(".vlist").forEach(vlist);
    document.querySelectorAll("[data-poll]").forEach(poll);
  });
})();
