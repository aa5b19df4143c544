// Web push on the alerts page: subscribe this browser through the app's service worker and
// hand the subscription to the server. In a file (no inline script: Content-Security-Policy).
(function () {
  const button = document.querySelector("[data-push-subscribe]");
  if (!button) return;
  const status = document.querySelector("[data-push-status]");
  const say = (text) => { if (status) status.textContent = text; };
  if (!("serviceWorker" in navigator) || !("PushManager" in window)) {
    button.disabled = true;
    say("This browser does not support web push (install the app first on a phone).");
    return;
  }
  const keyBytes = (base64url) => {
    const padded = (base64url + "===".slice((base64url.length + 3) % 4)).replace(/-/g, "+").replace(/_/g, "/");
    return Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
  };
  button.addEventListener("click", async () => {
    try {
      if ((await Notification.requestPermission()) !== "granted") { say("Notifications were not allowed."); return; }
      const registration = await navigator.serviceWorker.register("/sw.js");
      await navigator.serviceWorker.ready;
      const subscription = await registration.pushManager.subscribe({
        userVisibleOnly: true, applicationServerKey: keyBytes(button.dataset.vapidKey),
      });
      const answer = await fetch(button.dataset.url, {
        method: "POST", credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRFToken": button.dataset.csrf },
        body: JSON.stringify(subscription.toJSON()),
      });
      if (answer.ok) { window.location.reload(); } else { say((await answer.json()).error || "Refused."); }
    } catch (error) {
      say("Could not subscribe: " + error);
    }
  });
})();
