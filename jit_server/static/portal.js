// jit portal: the countdown of reservations, and passkeys (WebAuthn). Served as a file: the
// Content-Security-Policy allows no inline script. No framework, no build.
"use strict";

(function () {
  const csrf = () => document.querySelector('meta[name="csrf-token"]').content;

  // --- countdown: times come from the server, so a wrong clock on this device does not matter.
  const serverNow = Number(document.body.dataset.now || 0);
  const offset = serverNow ? serverNow - Date.now() / 1000 : 0;
  // As the server writes durations: "4m 30s", "2h", "45s".
  function human(s) {
    if (s <= 0) return "ended";
    s = Math.floor(s);
    const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
    const parts = [];
    if (h) parts.push(h + "h");
    if (m) parts.push(m + "m");
    if (sec || !parts.length) parts.push(sec + "s");
    return parts.join(" ");
  }
  function tick() {
    const now = Date.now() / 1000 + offset;
    for (const el of document.querySelectorAll("[data-expires]")) {
      el.textContent = human(Number(el.dataset.expires) - now);
    }
  }
  if (document.querySelector("[data-expires]")) {
    tick();
    setInterval(tick, 1000);
  }

  // --- base64url <-> bytes
  const b64 = (buf) => btoa(String.fromCharCode(...new Uint8Array(buf)))
    .replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  const bytes = (s) => {
    const t = atob(s.replace(/-/g, "+").replace(/_/g, "/"));
    return Uint8Array.from(t, (c) => c.charCodeAt(0));
  };

  async function post(url, body) {
    const r = await fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf() },
      body: JSON.stringify(body || {}),
    });
    let data = {};
    try { data = await r.json(); } catch (e) { /* an HTML error page */ }
    if (!r.ok) throw new Error(data.error || "the server refused (" + r.status + ")");
    return data;
  }

  function say(id, text) {
    const el = document.getElementById(id);
    if (el) el.textContent = text;
  }

  // The buttons below are served disabled: a click before this script listens would do nothing,
  // so they become usable only once it does (a slow device, or a click during page load).
  function onClick(el, handler) {
    el.addEventListener("click", handler);
    el.disabled = false;
  }

  const signin = document.getElementById("passkey-signin");
  if (signin) {
    onClick(signin, async () => {
      say("passkey-signin-status", "Waiting for your passkey…");
      try {
        const o = await post("/portal/login/passkey/options");
        const cred = await navigator.credentials.get({ publicKey: {
          challenge: bytes(o.challenge), rpId: o.rpId, timeout: o.timeout,
          userVerification: o.userVerification,
        } });
        const done = await post("/portal/login/passkey", {
          id: cred.id,
          clientDataJson: b64(cred.response.clientDataJSON),
          authenticatorData: b64(cred.response.authenticatorData),
          signature: b64(cred.response.signature),
        });
        window.location.assign(done.redirect);
      } catch (e) {
        say("passkey-signin-status", "Passkey sign-in did not work: " + e.message);
      }
    });
  }

  // --- Web Push: this browser gets notified of logins waiting for approval (sw.js shows them).
  const subscribe = document.getElementById("push-subscribe");
  if (subscribe) {
    onClick(subscribe, async () => {
      say("push-subscribe-status", "Asking this browser…");
      try {
        if (!("serviceWorker" in navigator) || !("PushManager" in window)) {
          throw new Error("this browser has no Web Push");
        }
        if ((await Notification.requestPermission()) !== "granted") {
          throw new Error("notifications are not allowed for this site");
        }
        const reg = await navigator.serviceWorker.register("/portal/sw.js", { scope: "/portal/" });
        await navigator.serviceWorker.ready;
        const sub = await reg.pushManager.subscribe({
          userVisibleOnly: true, applicationServerKey: bytes(subscribe.dataset.vapid),
        });
        const done = await post("/portal/push/subscribe", sub.toJSON());
        window.location.assign(done.redirect);
      } catch (e) {
        say("push-subscribe-status", "This browser was not set up: " + e.message);
      }
    });
  }

  const register = document.getElementById("passkey-register");
  if (register) {
    onClick(register, async () => {
      say("passkey-register-status", "Waiting for your authenticator…");
      try {
        const o = await post("/portal/passkeys/options");
        o.challenge = bytes(o.challenge);
        o.user.id = bytes(o.user.id);
        o.excludeCredentials = o.excludeCredentials.map((c) => ({ type: c.type, id: bytes(c.id) }));
        const cred = await navigator.credentials.create({ publicKey: o });
        const done = await post("/portal/passkeys", {
          clientDataJson: b64(cred.response.clientDataJSON),
          attestationObject: b64(cred.response.attestationObject),
          name: document.getElementById("passkey-name").value,
        });
        window.location.assign(done.redirect);
      } catch (e) {
        say("passkey-register-status", "The passkey was not added: " + e.message);
      }
    });
  }
})();
