#!/usr/bin/env python3
"""The portal in real Chromium, driven by Playwright: sign-in with TOTP and passkeys (a CDP
virtual authenticator), reserving with a live countdown, admins' pages, a non-admin refused,
forms without their CSRF token refused, labels on every control and keyboard-only use, push
approval, and the sessions page (a person's own, an admin's all, ended by a force-release).

Run by tests/tests/portal_browser.rs, which starts jit-server and sets up the persons; the
environment carries what this script needs (see `ENV` below). Prints "N passed, N failed".
"""
import base64, hashlib, hmac, json, os, re, ssl, struct, subprocess, sys, time, traceback
import urllib.request

from playwright.sync_api import sync_playwright, expect

ENV = {k: os.environ[k] for k in (
    "JIT_URL", "JIT_CA_PEM", "JIT_ADMIN_CODE", "JIT_ALICE_SECRET", "JIT_BOB_SECRET", "JIT_SHOTS",
    "JIT_CHROMIUM", "JIT_HOST_CREDENTIAL")}
URL = ENV["JIT_URL"]
SHOTS = ENV["JIT_SHOTS"]
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def spki_hash(ca_pem):
    """base64 SHA-256 of the CA's public key, for --ignore-certificate-errors-spki-list: the
    browser then trusts the jit CA as it would a company CA, and allows passkeys."""
    pub = subprocess.run(["openssl", "x509", "-in", ca_pem, "-pubkey", "-noout"],
                         check=True, capture_output=True).stdout
    der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "der"], input=pub,
                         check=True, capture_output=True).stdout
    return base64.b64encode(hashlib.sha256(der).digest()).decode()


def totp(secret_b32, steps_ahead=0):
    """RFC 6238 (SHA-1, 6 digits, 30 s): the person's authenticator app."""
    key = base64.b32decode(secret_b32.upper() + "=" * (-len(secret_b32) % 8))
    step = int(time.time()) // 30 + steps_ahead
    d = hmac.new(key, struct.pack(">Q", step), hashlib.sha1).digest()
    o = d[-1] & 15
    return "%06d" % ((struct.unpack(">I", d[o:o + 4])[0] & 0x7FFFFFFF) % 1000000)


def shot(page, name):
    page.screenshot(path=os.path.join(SHOTS, name + ".png"), full_page=True)


def check_labels(page):
    """Every visible control has a label (its own <label>, or aria-label) and a name."""
    missing = page.evaluate("""() => [...document.querySelectorAll('input, select, textarea, button')]
        .filter(el => el.type !== 'hidden')
        .filter(el => el.tagName === 'BUTTON'
            ? !(el.textContent.trim() || el.getAttribute('aria-label'))
            : !((el.labels && el.labels.length) || el.getAttribute('aria-label')))
        .map(el => el.outerHTML)""")
    assert not missing, f"controls without a label on {page.url}: {missing}"


def sign_in_totp(page, name, code):
    page.goto(URL + "/portal/login")
    page.fill("#person", name)
    page.fill("#code", code)
    page.click("form[action='/portal/login/totp'] button")
    expect(page.locator("header")).to_contain_text(f"Signed in as {name}")


def fetch(page, url):
    """A GET from inside the page (same cookies, same origin): status, content type, body."""
    return page.evaluate("""async (u) => { const r = await fetch(u);
        return { status: r.status, type: r.headers.get('content-type'), text: await r.text() }; }""", url)


def submit(page, action, fields, keep_csrf=True):
    """Builds a form on the current page and submits it, as a browser would; returns the
    response. The page's CSRF token goes in unless keep_csrf is False."""
    with page.expect_navigation() as nav:
        page.evaluate("""([action, fields, keep]) => {
            const f = document.createElement('form');
            f.method = 'post'; f.action = action;
            const meta = document.querySelector('meta[name="csrf-token"]');
            if (keep && meta) fields = { csrf: meta.content, ...fields };
            for (const [k, v] of Object.entries(fields)) {
                const i = document.createElement('input');
                i.type = 'hidden'; i.name = k; i.value = v; f.appendChild(i);
            }
            document.body.appendChild(f); f.submit(); }""", [action, fields, keep_csrf])
    return nav.value


def host_call(path, body):
    """A call of the host-facing API, as jitd on web01 makes it (its credential, the jit CA)."""
    ctx = ssl.create_default_context(cafile=ENV["JIT_CA_PEM"])
    req = urllib.request.Request(URL + "/v1" + path, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json",
                                          "Authorization": "Bearer " + ENV["JIT_HOST_CREDENTIAL"]})
    with urllib.request.urlopen(req, context=ctx, timeout=60) as r:
        return json.loads(r.read())


def flash(page):
    return page.locator("p.flash").inner_text()


class Run:
    def __init__(self, browser):
        self.browser = browser
        self.passed, self.failed = 0, 0
        self.admin = None

    def case(self, name, fn):
        try:
            fn()
            self.passed += 1
            print(f"ok   {name}", flush=True)
        except Exception:
            self.failed += 1
            print(f"FAIL {name}\n{traceback.format_exc()}", flush=True)

    def context(self, **kw):
        ctx = self.browser.new_context(viewport=kw.pop("viewport", {"width": 1200, "height": 900}), **kw)
        ctx.set_default_timeout(15000)
        return ctx

    # --- the cases

    def admin_enrolls_with_the_bootstrap_code(self):
        ctx = self.context()
        page = ctx.new_page()
        page.goto(URL + "/portal/")
        assert page.url.endswith("/portal/login"), "not signed in: the sign-in page"
        page.goto(URL + "/portal/enroll")
        check_labels(page)
        shot(page, "portal-enroll")
        page.fill("#code", ENV["JIT_ADMIN_CODE"].lower().replace("-", " "))
        page.click("form[action='/portal/enroll'] button")
        expect(page).to_have_url(re.compile(r"/portal/enroll/setup$"))
        check_labels(page)
        page.click("summary")
        secret = page.locator("code.secret").inner_text().strip()
        shot(page, "portal-enroll-setup")
        page.fill("#code", totp(secret))
        page.click("form[action='/portal/enroll/totp'] button")
        expect(page).to_have_url(re.compile(r"/portal/factors$"))
        assert "authenticator app is set up" in flash(page)
        expect(page.locator("nav")).to_contain_text("Audit")
        self.admin = page

    def admin_adds_a_person_and_resets_a_factor(self):
        page = self.admin
        page.goto(URL + "/portal/admin/persons")
        check_labels(page)
        page.fill("#name", "carol")
        page.fill("#display_name", "Carol Jones")
        page.click("form[action='/portal/admin/persons'] button")
        first = page.locator("#issued-secret").inner_text()
        assert re.fullmatch(r"[A-Z2-9]{5}(-[A-Z2-9]{5}){3}", first), first
        shot(page, "portal-admin-issued")
        page.click("text=Done")
        expect(page.locator("table")).to_contain_text("Carol Jones")
        shot(page, "portal-admin-persons")
        page.click("text=Reset factors of carol")
        second = page.locator("#issued-secret").inner_text()
        assert second != first and re.fullmatch(r"[A-Z2-9-]{23}", second), second
        # The audit names the admin who acted, and exports as CSV and JSON.
        page.goto(URL + "/portal/admin/audit?person=carol")
        check_labels(page)
        rows = page.locator("table.audit tbody tr")
        expect(rows.first).to_contain_text("person.reset_factor")
        expect(rows.first).to_contain_text("person:admin")
        shot(page, "portal-admin-audit")
        csv = fetch(page, "/portal/admin/audit?person=carol&format=csv")
        assert csv["status"] == 200 and csv["type"].startswith("text/csv"), csv
        lines = csv["text"].strip().splitlines()
        assert lines[0].startswith("id,time,actor,action") and len(lines) >= 3, lines
        js = json.loads(fetch(page, "/portal/admin/audit?person=carol&format=json")["text"])
        assert {e["action"] for e in js["events"]} >= {"person.add", "person.reset_factor"}, js
        # Groups, accounts and hosts.
        page.goto(URL + "/portal/admin/groups")
        check_labels(page)
        page.select_option("#add-1", "carol")
        page.click("form[action='/portal/admin/groups/ops/members'] button")
        assert "Added carol to ops" in flash(page)
        shot(page, "portal-admin-groups")
        page.goto(URL + "/portal/admin/accounts")
        check_labels(page)
        page.fill("#name", "deploy")
        page.fill("#groups", "ops")
        page.fill("#hosts", "web*")
        page.click("form[action='/portal/admin/accounts'] button.primary")
        assert "Added shared account deploy" in flash(page)
        shot(page, "portal-admin-accounts")
        page.goto(URL + "/portal/admin/hosts")
        check_labels(page)
        page.fill("#name", "web02")
        page.fill("#labels", "web")
        page.click("form[action='/portal/admin/hosts'] button")
        assert page.locator("#issued-secret").inner_text().startswith("jit1_")
        shot(page, "portal-admin-join-token")
        page.goto(URL + "/portal/admin/hosts")
        expect(page.locator("table")).to_contain_text("web02")
        shot(page, "portal-admin-hosts")

    def alice_signs_in_with_totp_registers_a_passkey_and_signs_in_with_it(self):
        ctx = self.context()
        page = ctx.new_page()
        cdp = ctx.new_cdp_session(page)
        cdp.send("WebAuthn.enable")
        auth = cdp.send("WebAuthn.addVirtualAuthenticator", {"options": {
            "protocol": "ctap2", "transport": "internal", "hasResidentKey": True,
            "hasUserVerification": True, "isUserVerified": True}})["authenticatorId"]
        capture = os.environ.get("JIT_WEBAUTHN_CAPTURE")
        seen = []
        if capture:
            # What the browser really sends, kept as test data for the server's own unit tests.
            page.on("request", lambda r: seen.append(("sent", r.url, r.post_data))
                    if r.method == "POST" and "passkey" in r.url and "options" not in r.url else None)
            page.on("response", lambda r: seen.append(("options", r.url, r.text()))
                    if r.url.endswith("/options") else None)
        page.goto(URL + "/portal/login")
        check_labels(page)
        shot(page, "portal-login")
        sign_in_totp(page, "alice", totp(ENV["JIT_ALICE_SECRET"], 1))
        page.goto(URL + "/portal/factors")
        check_labels(page)
        page.fill("#passkey-name", "laptop")
        page.click("#passkey-register")
        expect(page.locator("p.flash")).to_contain_text('Passkey "laptop" added')
        expect(page.locator("table")).to_contain_text("laptop")
        shot(page, "portal-factors")
        creds = cdp.send("WebAuthn.getCredentials", {"authenticatorId": auth})["credentials"]
        assert len(creds) == 1 and creds[0]["isResidentCredential"], creds
        page.click("text=Sign out")
        expect(page).to_have_url(re.compile(r"/portal/login$"))
        page.click("#passkey-signin")
        expect(page.locator("header")).to_contain_text("Signed in as alice")
        assert page.url.endswith("/portal/")
        # The authenticator's counter moved: the server checked and stored it.
        creds = cdp.send("WebAuthn.getCredentials", {"authenticatorId": auth})["credentials"]
        assert creds[0]["signCount"] >= 2, creds
        if capture:
            with open(capture, "w") as f:
                json.dump({"origin": URL, "exchanges": seen}, f, indent=1)
        page.goto(URL + "/portal/factors")
        page.click("text=Move to a new authenticator app")
        expect(page).to_have_url(re.compile(r"/portal/factors/totp$"))
        check_labels(page)
        shot(page, "portal-totp-setup")
        self.alice = page

    def alice_reserves_sees_the_countdown_extends_and_releases(self):
        page = self.alice
        page.goto(URL + "/portal/")
        check_labels(page)
        page.select_option("#target", "admin@web01")
        page.fill("#minutes", "5")
        page.fill("#reason", "patch openssl")
        page.click("form[action='/portal/reserve'] button")
        assert "Reserved admin on web01" in flash(page)
        timer = page.locator("time.countdown").first
        before = timer.inner_text()
        assert re.fullmatch(r"[45]m( \d+s)?", before), before
        # portal.js counts down each second, in the server's own format.
        page.wait_for_function(
            "t => document.querySelector('time.countdown').textContent !== t", arg=before)
        after = timer.inner_text()
        assert re.fullmatch(r"4m \d+s", after), (before, after)
        shot(page, "portal-home")
        page.fill("input[name='minutes'][id^='ext-']", "10")
        page.click("form[action='/portal/extend'] button")
        assert "is yours until" in flash(page)
        expect(page.locator("time.countdown").first).to_have_text(re.compile(r"1[45]m \d+s"))
        # A phone-sized screen: everything still fits and reads.
        phone = self.context(viewport={"width": 390, "height": 844}, storage_state=page.context.storage_state())
        p2 = phone.new_page()
        p2.goto(URL + "/portal/")
        width = p2.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"page is {width}px wide on a 390px screen"
        shot(p2, "portal-home-phone")
        phone.close()
        # The admin sees it among the live reservations.
        self.admin.goto(URL + "/portal/admin/reservations")
        expect(self.admin.locator("table")).to_contain_text("alice")
        check_labels(self.admin)
        shot(self.admin, "portal-admin-reservations")
        page.click("text=Release admin on web01")
        assert "Released admin on web01" in flash(page)
        expect(page.locator("#mine-h + p")).to_contain_text("You hold no reservation now")

    def alice_adds_and_removes_an_ssh_key(self):
        page = self.alice
        key = os.path.join(os.environ["TMPDIR"], "alice_ed25519")
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "alice@laptop", "-f", key],
                       check=True)
        public = open(key + ".pub").read().strip()
        fingerprint = subprocess.run(["ssh-keygen", "-l", "-f", key + ".pub"], check=True,
                                     capture_output=True, text=True).stdout.split()[1]
        for f in (key, key + ".pub"):
            os.remove(f)
        page.goto(URL + "/portal/keys")
        check_labels(page)
        page.fill("#public_key", public)
        page.click("form[action='/portal/keys'] button")
        assert f"Added ssh-ed25519 key {fingerprint}" in flash(page), flash(page)
        expect(page.locator("table")).to_contain_text(fingerprint)
        expect(page.locator("table")).to_contain_text("alice@laptop")
        shot(page, "portal-keys")
        # A private key pasted by mistake is refused, and not kept.
        page.fill("#public_key", "-----BEGIN OPENSSH PRIVATE KEY-----")
        page.click("form[action='/portal/keys'] button")
        expect(page.locator("p.flash.err")).to_be_visible()
        page.click("table button.danger")
        assert f"Removed ssh-ed25519 key {fingerprint}" in flash(page)

    def a_non_admin_gets_403_on_admin_pages(self):
        ctx = self.context()
        page = ctx.new_page()
        # Keyboard only: Tab to the fields, type, Enter.
        page.goto(URL + "/portal/login")
        for _ in range(12):
            page.keyboard.press("Tab")
            if page.evaluate("document.activeElement.id") == "person":
                break
        assert page.evaluate("document.activeElement.id") == "person", "Tab reaches the name field"
        page.keyboard.type("bob")
        page.keyboard.press("Tab")
        page.keyboard.type(totp(ENV["JIT_BOB_SECRET"], 1))
        page.keyboard.press("Enter")
        expect(page.locator("header")).to_contain_text("Signed in as bob")
        assert page.locator("nav").inner_text().find("Audit") < 0, "no admin menu for bob"
        for path in ["persons", "groups", "accounts", "hosts", "reservations", "audit"]:
            r = page.goto(URL + "/portal/admin/" + path)
            assert r.status == 403, (path, r.status)
            expect(page.locator("p.flash")).to_contain_text("for admins")
        # Nor can bob post to them, with a good CSRF token.
        page.goto(URL + "/portal/")
        r = submit(page, "/portal/admin/persons", {"name": "mallory"})
        assert r.status == 403, r.status
        shot(page, "portal-forbidden")

    def a_form_without_its_csrf_token_is_refused(self):
        page = self.alice
        page.goto(URL + "/portal/")
        form = {"target": "admin@web01", "minutes": "5"}
        r = submit(page, "/portal/reserve", form, keep_csrf=False)
        assert r.status == 403, r.status
        expect(page.locator("p.flash")).to_contain_text("security token is missing")
        page.goto(URL + "/portal/")
        r = submit(page, "/portal/reserve", {**form, "csrf": "not-the-token"}, keep_csrf=False)
        assert r.status == 403, r.status
        # The same form from a page of another site: refused too (and the cookie stays home).
        page.goto("about:blank")
        r = submit(page, URL + "/portal/reserve", form, keep_csrf=False)
        assert r.status == 403, r.status
        page.goto(URL + "/portal/")
        expect(page.locator("#mine-h + p")).to_contain_text("You hold no reservation now")
        # With its token, the same form goes through.
        r = submit(page, "/portal/reserve", form)
        assert "Reserved admin on web01" in flash(page)


    def alice_approves_a_push_by_its_number(self):
        page = self.alice
        # Push on, with an ntfy topic.
        page.goto(URL + "/portal/factors")
        check_labels(page)
        page.fill("#ntfy_topic", "jit-alice-7q")
        page.click("form[action='/portal/factors/push'] button")
        assert "Push is on" in flash(page), flash(page)
        expect(page.locator("#push-h + p")).to_contain_text("jit-alice-7q")
        shot(page, "push-factors")
        # The service worker shows a push it gets and offers nothing but the approval page.
        page.context.grant_permissions(["notifications"], origin=URL)
        page.evaluate("""async () => { await navigator.serviceWorker.register('/portal/sw.js',
            { scope: '/portal/' }); await navigator.serviceWorker.ready; }""")
        cdp = page.context.new_cdp_session(page)
        regs = []
        cdp.on("ServiceWorker.workerRegistrationUpdated",
               lambda e: regs.extend(r["registrationId"] for r in e["registrations"]
                                     if r["scopeURL"].endswith("/portal/")))
        cdp.send("ServiceWorker.enable")
        page.wait_for_function("() => navigator.serviceWorker.controller !== undefined")
        deadline = time.time() + 10
        while not regs and time.time() < deadline:
            page.wait_for_timeout(100)
        assert regs, "the service worker registered"
        # A push delivered while the worker is still starting can be dropped by the browser, so
        # it is delivered again (same tag: one notification) until one shows, for up to 30 s.
        shown = []
        for _ in range(6):
            cdp.send("ServiceWorker.deliverPushMessage", {
                "origin": URL, "registrationId": regs[0],
                "data": json.dumps({"title": "Approve login to admin on web01?",
                                    "body": "admin (sshd from 192.0.2.10)",
                                    "url": "/portal/approve", "tag": "t1"})})
            shown = page.evaluate("""async () => { for (let i = 0; i < 50; i++) {
                const r = await navigator.serviceWorker.getRegistration('/portal/');
                const n = await r.getNotifications();
                if (n.length) return n.map(x => ({ title: x.title, body: x.body, url: x.data.url,
                                                  actions: x.actions.length }));
                await new Promise(ok => setTimeout(ok, 100)); } return []; }""")
            if shown:
                break
        assert shown == [{"title": "Approve login to admin on web01?",
                          "body": "admin (sshd from 192.0.2.10)", "url": "/portal/approve",
                          "actions": 0}], shown
        # alice holds admin on web01 (the case before reserved it). A login there begins:
        begun = host_call("/host/logins", {"account": "admin",
                                           "origin": {"service": "sshd", "rhost": "192.0.2.10"}})
        assert begun["outcome"] == "challenge" and begun["factor"] == "push", begun
        push = begun["push"]
        number = push["number"]
        # The link of the notification opens the approval page of that login.
        page.goto(push["approve_url"])
        check_labels(page)
        card = page.locator("li.approval")
        expect(card).to_have_count(1)
        expect(card).to_contain_text("admin")
        expect(card).to_contain_text("web01")
        expect(card).to_contain_text("from 192.0.2.10")
        assert str(number) not in card.inner_text().split(), "the page never shows the number"
        shot(page, "push-approve")
        phone = self.context(viewport={"width": 390, "height": 844}, storage_state=page.context.storage_state())
        p2 = phone.new_page()
        p2.goto(push["approve_url"])
        assert p2.evaluate("document.documentElement.scrollWidth") <= 390
        shot(p2, "push-approve-phone")
        phone.close()
        # Keyboard only: the number field, the number, Enter.
        page.focus("li.approval input.number")
        page.keyboard.type(str(number))
        page.keyboard.press("Enter")
        page.wait_for_load_state()
        assert "Approved" in flash(page), flash(page)
        expect(page.locator("#none-waiting")).to_be_visible()
        shot(page, "push-approved")
        done = host_call("/host/logins/%s/wait" % begun["attempt"], {"wait_secs": 5})
        assert done["outcome"] == "granted" and done["person"] == "alice", done
        self.login = (begun["attempt"], done["reservation_id"])
        # The same link again: that login no longer waits.
        page.goto(push["approve_url"])
        expect(page.locator("p.flash.err")).to_contain_text("no longer waits")
        # The approval form without its CSRF token is refused.
        r = submit(page, push["approve_url"].replace(URL, ""), {"number": str(number)}, keep_csrf=False)
        assert r.status == 403, r.status


    def sessions_page_lists_alices_session_and_an_admin_ends_it(self):
        page, admin = self.alice, self.admin
        assert getattr(self, "login", None), "this case uses the login the push case granted"
        attempt, reservation = self.login
        # web01's jitd reports the session that login opened.
        def report(event_id, action, **extra):
            host_call("/host/events", {"events": [{
                "id": event_id, "at": int(time.time()), "action": action, "account": "admin",
                "result": "ok", "reason": action, "reservation_id": reservation,
                "attempt": attempt, "origin": {"service": "sshd", "rhost": "192.0.2.10"},
                **extra}]})
        report("s-open", "session.open")
        page.goto(URL + "/portal/sessions")
        check_labels(page)
        row = page.locator("table tbody tr")
        expect(row).to_have_count(1)
        for text in ("admin", "web01", "sshd", "192.0.2.10", "stays open"):
            expect(row).to_contain_text(text)
        # The admin makes admin's sessions end with their reservation.
        admin.goto(URL + "/portal/admin/accounts")
        admin.click("text=End sessions of admin with the reservation")
        assert "Sessions of admin now end with their reservation" in flash(admin), flash(admin)
        expect(admin.locator("table")).to_contain_text("end with the reservation")
        check_labels(admin)
        # alice now sees the time left counting down.
        page.reload()
        timer = page.locator("table time.countdown")
        expect(timer).to_have_count(1)
        before = timer.inner_text()
        page.wait_for_function(
            "t => document.querySelector('table time.countdown').textContent !== t", arg=before)
        shot(page, "portal-sessions")
        # The admin sees everybody's, with whose it is, and ends it by force-releasing.
        admin.goto(URL + "/portal/sessions")
        check_labels(admin)
        expect(admin.locator("table tbody tr")).to_contain_text("alice")
        shot(admin, "portal-admin-sessions")
        admin.click("text=End the session of admin on web01")
        assert "Released admin on web01 (held by alice)" in flash(admin), flash(admin)
        # What web01's jitd reads next, and what it reports once it ended the session.
        stands = host_call("/host/reservations", {"ids": [reservation]})["reservations"][0]
        assert stands["ended"] == "force_released" and stands["ended_by"] == "admin", stands
        report("s-ended", "session.ended", ended="force_released")
        page.reload()
        expect(page.locator("#no-sessions")).to_contain_text("You have no open session")


def main():
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=ENV["JIT_CHROMIUM"],
            args=CHROMIUM_FLAGS + ["--ignore-certificate-errors-spki-list=" + spki_hash(ENV["JIT_CA_PEM"])])
        run = Run(browser)
        run.case("admin enrolls with the bootstrap code", run.admin_enrolls_with_the_bootstrap_code)
        run.case("admin adds a person and resets a factor", run.admin_adds_a_person_and_resets_a_factor)
        run.case("alice signs in with TOTP, registers a passkey and signs in with it",
                 run.alice_signs_in_with_totp_registers_a_passkey_and_signs_in_with_it)
        run.case("alice reserves, sees the countdown, extends and releases",
                 run.alice_reserves_sees_the_countdown_extends_and_releases)
        run.case("alice adds and removes an ssh key", run.alice_adds_and_removes_an_ssh_key)
        run.case("a non-admin gets 403 on admin pages", run.a_non_admin_gets_403_on_admin_pages)
        run.case("a form without its CSRF token is refused", run.a_form_without_its_csrf_token_is_refused)
        run.case("alice approves a push by its number", run.alice_approves_a_push_by_its_number)
        run.case("the sessions page lists alice's session and an admin ends it",
                 run.sessions_page_lists_alices_session_and_an_admin_ends_it)
        browser.close()
    print(f"{run.passed} passed, {run.failed} failed")
    sys.exit(1 if run.failed else 0)


if __name__ == "__main__":
    main()
