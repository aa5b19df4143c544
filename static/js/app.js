// The IST clock in the top bar: starts from the server's time and ticks locally.
(function () {
  const el = document.querySelector("[data-ist-clock]");
  if (!el) return;
  const offset = Number(el.dataset.epochMs) - Date.now();
  const fmt = new Intl.DateTimeFormat("en-IN", {
    timeZone: "Asia/Kolkata", weekday: "short", day: "2-digit", month: "short",
    hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false,
  });
  const tick = () => { el.textContent = fmt.format(new Date(Date.now() + offset)) + " IST"; };
  tick();
  setInterval(tick, 1000);
})();

// Wide tables that overflow their box get a visible "scroll sideways" hint (also after htmx swaps).
(function () {
  const mark = () => document.querySelectorAll(".table-wrap").forEach((wrap) => {
    wrap.classList.toggle("scrolls", wrap.scrollWidth > wrap.clientWidth + 2);
  });
  window.addEventListener("load", mark);
  window.addEventListener("resize", mark);
  document.addEventListener("htmx:afterSwap", mark);
})();

// Installable app: the service worker serves an offline page when the network is gone.
if ("serviceWorker" in navigator) {
  window.addEventListener("load", () => navigator.serviceWorker.register("/sw.js").catch(() => {}));
}
// Forms that ask before they act (the kill switch): <form data-confirm="question">. In this file
// rather than an onsubmit attribute because the Content-Security-Policy runs no inline script.
document.addEventListener("submit", (event) => {
  const question = event.target.dataset && event.target.dataset.confirm;
  if (question && !window.confirm(question)) event.preventDefault();
});
