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

// Forms that ask before they act (the kill switch): <form data-confirm="question">. In this file
// rather than an onsubmit attribute because the Content-Security-Policy runs no inline script.
document.addEventListener("submit", (event) => {
  const question = event.target.dataset && event.target.dataset.confirm;
  if (question && !window.confirm(question)) event.preventDefault();
});
