// jit portal's service worker: shows a Web Push notification about a login waiting for
// approval, and opens the approval page when it is clicked. It never approves anything: that
// takes the person typing the number the login prompt shows, on the page.
"use strict";

self.addEventListener("push", (event) => {
  let m = {};
  try { m = event.data ? event.data.json() : {}; } catch (e) { m = {}; }
  const title = m.title || "A login waits for your approval";
  event.waitUntil(self.registration.showNotification(title, {
    body: m.body || "",
    tag: m.tag || "jit",
    requireInteraction: true,
    data: { url: m.url || "/portal/approve" },
  }));
});

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  const url = new URL((event.notification.data && event.notification.data.url) || "/portal/approve",
                      self.location.origin);
  // Only pages of this portal are opened.
  const target = url.origin === self.location.origin ? url.href : "/portal/approve";
  event.waitUntil(self.clients.openWindow(target));
});
