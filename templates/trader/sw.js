{% load static %}// Service worker of the desk. It keeps only the offline page and static files: pages with
// money on them always come from the network (a stale P&L is worse than none).
const CACHE = "trader-shell-v1";
const OFFLINE = "{% url 'offline' %}";
const SHELL = [OFFLINE, "{% static 'css/app.css' %}", "{% static 'icons/icon-192.png' %}"];

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(CACHE).then((cache) => cache.addAll(SHELL)).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches.keys().then((keys) => Promise.all(keys.filter((k) => k !== CACHE).map((k) => caches.delete(k))))
      .then(() => self.clients.claim())
  );
});

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") return;
  if (request.mode === "navigate") {
    event.respondWith(fetch(request).catch(() => caches.match(OFFLINE)));
    return;
  }
  if (new URL(request.url).pathname.startsWith("/static/")) {
    event.respondWith(caches.match(request).then((hit) => hit || fetch(request)));
  }
});

// Alerts by web push (Alerts page): show them, and open the desk when one is tapped.
self.addEventListener("push", (event) => {
  let data = { title: "Trader", body: "" };
  try { data = event.data ? event.data.json() : data; } catch (error) { data.body = event.data ? event.data.text() : ""; }
  event.waitUntil(self.registration.showNotification(data.title || "Trader", {
    body: data.body || "", icon: "{% static 'icons/icon-192.png' %}", tag: "trader-alert",
  }));
});

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  event.waitUntil(self.clients.matchAll({ type: "window" }).then((windows) => {
    const open = windows.find((w) => "focus" in w);
    return open ? open.focus() : self.clients.openWindow("/");
  }));
});
