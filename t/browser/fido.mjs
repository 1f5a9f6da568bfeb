// The FIDO page in a real browser: headless Debian Chromium driven by
// playwright-core, with a CDP virtual authenticator (CTAP 2.1, internal
// transport, resident keys, user verification).  Run by
// t/module/fido-browser.t; by hand:
//
//   node t/browser/fido.mjs --base http://localhost:PORT --code CODE \
//       [--user demo-doctor] [--out DIR] [--protected PATH] \
//       [--sign BASE64-SHA256-DIGEST] \
//       [--authorize AUTHORIZE-URL --redirect-uri REDIRECT-URI]
//
// (or HPKI_BASE_URL, HPKI_ENROLL_CODE, HPKI_FIDO_USER, HPKI_SHOT_DIR).
// --authorize is an OpenID Connect authorization request of a client that
// logs in with FIDO, --redirect-uri its redirect URI: the browser opens
// the first, logs in on the FIDO page and must end at the second.
// HPKI_CHROMIUM names the browser (default /usr/bin/chromium),
// HPKI_TEST_TIMEOUT bounds each wait in seconds (default 15).
//
// It prints one JSON object on stdout: what each step saw, for the Perl
// wrapper to assert on.  Progress goes to stderr.  Exit 0 when every step
// ran (whatever it saw), 1 when a step could not run (then "failed_step"
// and "error" say where and why, and fido-failure.png shows the page).

import { createRequire } from 'node:module';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

// require() rather than import: it also looks in NODE_PATH, which is how
// a copy of the tree without node_modules (make test-asan) finds it
const require = createRequire(import.meta.url);
const { chromium } = require('playwright-core');

const { values: opt } = parseArgs({
    options: {
        base: { type: 'string', default: process.env.HPKI_BASE_URL },
        code: { type: 'string', default: process.env.HPKI_ENROLL_CODE },
        user: { type: 'string',
                default: process.env.HPKI_FIDO_USER || 'demo-doctor' },
        out: { type: 'string', default: process.env.HPKI_SHOT_DIR || '.' },
        protected: { type: 'string', default: '/ehr/record.json' },
        sign: { type: 'string', default: process.env.HPKI_SIGN_DIGEST },
        authorize: { type: 'string' },
        'redirect-uri': { type: 'string' },
    },
});

if (!opt.base || !opt.code || !opt.authorize !== !opt['redirect-uri']) {
    console.error('usage: fido.mjs --base URL --code CODE [--user ID] '
                  + '[--out DIR] [--protected PATH] [--sign DIGEST] '
                  + '[--authorize URL --redirect-uri URI]');
    process.exit(2);
}

const BASE = opt.base.replace(/\/+$/, '');
const PAGE = `${BASE}/hpki/fido/`;
const TIMEOUT = 1000 * (Number(process.env.HPKI_TEST_TIMEOUT) || 15);
const CHROMIUM = process.env.HPKI_CHROMIUM || '/usr/bin/chromium';

mkdirSync(opt.out, { recursive: true });

const report = { ok: false, steps: {}, console: [], page_errors: [],
                 http_errors: [], csp_violations: [] };
let step = 'launch';

function log(...a) {
    console.error('# fido.mjs:', ...a);
}

// the message line, once the page is no longer busy
async function settledMessage(page) {
    await page.waitForFunction(() => {
        const m = document.getElementById('message');
        return m.dataset.state !== 'busy'
            && !document.getElementById('login').disabled;
    }, null, { timeout: TIMEOUT });
    return page.evaluate(() => {
        const m = document.getElementById('message');
        return { state: m.dataset.state, text: m.textContent };
    });
}

// the token status, once checked
async function settledTokenStatus(page) {
    await page.waitForFunction(() => {
        const t = document.getElementById('token-status');
        return t.dataset.state === 'valid' || t.dataset.state === 'invalid'
            || (t.dataset.state === 'unknown' && t.textContent !== '');
    }, null, { timeout: TIMEOUT });
    return page.evaluate(() => {
        const t = document.getElementById('token-status');
        return { state: t.dataset.state, text: t.textContent };
    });
}

async function sessionView(page) {
    return page.evaluate((key) => ({
        visible: !document.getElementById('session').hidden,
        login_visible: !document.getElementById('login-section').hidden,
        name: document.getElementById('name').textContent,
        role: document.getElementById('role').textContent,
        user_id: document.getElementById('user-id').textContent,
        session_storage: sessionStorage.getItem(key),
        local_storage_keys: Object.keys(localStorage),
    }), 'hpki.fido.session');
}

// once a stored session's token has been checked (the page checks it as
// it loads), so that what it shows no longer changes by itself
async function settledPage(page) {
    await page.waitForFunction(() =>
        document.getElementById('session').hidden
        || document.getElementById('token-status').dataset.state
            !== 'checking', null, { timeout: TIMEOUT });
}

// what a person sees on the page: the message, and which parts are shown
async function pageView(page) {
    return {
        url: page.url(),
        message: await page.evaluate(() => {
            const m = document.getElementById('message');
            return { state: m.dataset.state, text: m.textContent };
        }),
        login_button_visible: await page.isVisible('#login'),
        login_button_enabled: await page.isEnabled('#login'),
        session_visible: await page.isVisible('#session'),
        name: await page.textContent('#name'),
        token_status: await page.textContent('#token-status'),
    };
}

// a request from the page, as an application on the same origin makes it
async function fetchFromPage(page, path, token, init = {}) {
    return page.evaluate(async ({ path, token, init }) => {
        const headers = Object.assign({}, init.headers || {});
        if (token) {
            headers.Authorization = 'Bearer ' + token;
        }
        const r = await fetch(path, Object.assign({}, init,
                                                  { headers, cache: 'no-store' }));
        const text = await r.text();
        let json = null;
        try { json = JSON.parse(text); } catch (e) { /* not JSON */ }
        return {
            status: r.status,
            json,
            x_subject: r.headers.get('X-Subject'),
            x_role: r.headers.get('X-Role'),
            www_authenticate: r.headers.get('WWW-Authenticate'),
        };
    }, { path, token, init });
}

function tokenOf(view) {
    try {
        return JSON.parse(view.session_storage).access_token;
    } catch (e) {
        return null;
    }
}

async function openPage(page, url) {
    await page.goto(url, { waitUntil: 'load', timeout: TIMEOUT });
    await page.waitForSelector('html[data-ready="true"]',
                               { state: 'attached', timeout: TIMEOUT });
}

let browser, page;

try {
    browser = await chromium.launch({
        executablePath: CHROMIUM,
        headless: true,
        timeout: TIMEOUT * 2,
        // a new, empty user-data-dir is playwright's own default
        args: ['--no-sandbox', '--disable-gpu', '--disable-quic',
               '--no-first-run', '--disable-background-networking',
               '--disable-component-update', '--disable-sync'],
    });
    report.browser_version = browser.version();

    const context = await browser.newContext({
        viewport: { width: 480, height: 860 },
        locale: 'ja-JP',
    });
    page = await context.newPage();
    page.setDefaultTimeout(TIMEOUT);

    page.on('console', (m) => {
        const text = m.text();
        report.console.push({ type: m.type(), text });
        if (/Content Security Policy/i.test(text)) {
            report.csp_violations.push(text);
        }
    });
    page.on('pageerror', (e) => report.page_errors.push(String(e)));
    page.on('response', async (r) => {
        if (r.status() >= 400 && !/favicon\.ico$/.test(r.url())) {
            report.http_errors.push({ url: r.url(), status: r.status() });
        }
        // the API's answers, for the log when something fails
        if (/\/hpki\/(fido\/(register|login)(\/options)?|whoami|revoke|sign)$/
            .test(r.url()) || /\/hpki\/authorize\?/.test(r.url()))
        {
            const body = (await r.text().catch(() => '')).trim();
            log(r.request().method(), r.url(), r.status(),
                r.headers().location || '',
                body.length > 600 ? body.slice(0, 600) + '...' : body);
        }
    });

    // the virtual authenticator: a phone's platform authenticator
    step = 'virtual authenticator';
    const cdp = await context.newCDPSession(page);
    await cdp.send('WebAuthn.enable', { enableUI: false });
    const { authenticatorId } = await cdp.send(
        'WebAuthn.addVirtualAuthenticator', {
            options: {
                protocol: 'ctap2',
                ctap2Version: 'ctap2_1',
                transport: 'internal',
                hasResidentKey: true,
                hasUserVerification: true,
                isUserVerified: true,
                automaticPresenceSimulation: true,
            },
        });
    log('virtual authenticator', authenticatorId);

    // 1. the QR code's link: the code is in the fragment
    step = 'register';
    await openPage(page, `${PAGE}#code=${encodeURIComponent(opt.code)}`);
    const page_info = await page.evaluate(() => ({
        json_api: typeof PublicKeyCredential.parseCreationOptionsFromJSON
            === 'function',
        secure_context: window.isSecureContext,
        title: document.title,
    }));
    const prefilled = await page.inputValue('#code');
    const url_after = page.url();
    await page.click('#register');
    const registered = await settledMessage(page);
    await page.screenshot({ path: join(opt.out, 'fido-register.png'),
                            fullPage: true });
    report.steps.register = { ...page_info, prefilled, url_after,
                              message: registered };
    log('register:', registered.state, registered.text);
    if (registered.state !== 'ok') {
        throw new Error(`registration failed: ${registered.text}`);
    }

    // 2. the same code again: single use, the server's words are shown
    step = 'register again';
    await page.fill('#code', opt.code);
    await page.click('#register');
    report.steps.register_again = { message: await settledMessage(page) };

    // 3. a fresh page, a discoverable-credential login (no user id)
    step = 'login';
    await openPage(page, PAGE);
    await page.click('#login');
    const logged = await settledMessage(page);
    const status = logged.state === 'ok' ? await settledTokenStatus(page)
                                         : null;
    const view = await sessionView(page);
    await page.screenshot({ path: join(opt.out, 'fido-session.png'),
                            fullPage: true });
    const token = tokenOf(view);
    report.steps.login = { message: logged, token_status: status, ...view,
                           access_token: token };
    log('login:', logged.state, logged.text, status && status.text);
    if (logged.state !== 'ok') {
        throw new Error(`login failed: ${logged.text}`);
    }

    // 4. the token at a protected location and at the token check
    step = 'protected location';
    report.steps.protected = {
        with_token: await fetchFromPage(page, opt.protected, token),
        without_token: await fetchFromPage(page, opt.protected, null),
        whoami: await fetchFromPage(page, '/hpki/whoami', token),
    };
    if (opt.sign) {
        report.steps.protected.sign = await fetchFromPage(page, '/hpki/sign',
                                                          token, {
            method: 'POST',
            headers: { 'Content-Type': 'application/json' },
            body: JSON.stringify({ hashes: [opt.sign] }),
        });
    }

    // 5. log out: the token is revoked (RFC 7009) and forgotten
    step = 'logout';
    await page.click('#logout');
    const out = await settledMessage(page);
    report.steps.logout = {
        message: out,
        ...(await sessionView(page)),
        protected_after: await fetchFromPage(page, opt.protected, token),
    };

    // 6. a browser without the Level 3 JSON helpers: the page's own
    //    base64url fallback, and a login that names the user
    step = 'login without the JSON helpers';
    await page.addInitScript(() => {
        delete PublicKeyCredential.parseCreationOptionsFromJSON;
        delete PublicKeyCredential.parseRequestOptionsFromJSON;
        delete PublicKeyCredential.prototype.toJSON;
    });
    await openPage(page, PAGE);
    const json_api = await page.evaluate(() =>
        typeof PublicKeyCredential.parseRequestOptionsFromJSON === 'function'
        || typeof PublicKeyCredential.prototype.toJSON === 'function');
    await page.fill('#user', opt.user);
    await page.click('#login');
    const logged2 = await settledMessage(page);
    const status2 = logged2.state === 'ok' ? await settledTokenStatus(page)
                                           : null;
    const view2 = await sessionView(page);
    const token2 = tokenOf(view2);
    report.steps.login_fallback = {
        json_api, message: logged2, token_status: status2, ...view2,
        protected: await fetchFromPage(page, opt.protected, token2),
        same_token: token2 !== null && token2 === token,
    };
    if (logged2.state !== 'ok') {
        throw new Error(`login without the JSON helpers failed: `
                        + logged2.text);
    }

    // 7. an application's OpenID Connect login: its authorization request
    //    (a client that logs in with FIDO) is sent on to this page with a
    //    handle in the fragment; the person is still logged in here (the
    //    session of step 6 is in this tab's sessionStorage)
    let handle = null;
    if (opt.authorize) {
        step = 'application login';
        const rp = opt['redirect-uri'];
        const arrival = await page.goto(opt.authorize,
                                        { waitUntil: 'load',
                                          timeout: TIMEOUT });
        await page.waitForSelector('html[data-ready="true"]',
                                   { state: 'attached', timeout: TIMEOUT });
        await settledPage(page);

        // the authorize endpoint's answer: the redirect to the page
        const authz = arrival && arrival.request().redirectedFrom();
        const authz_res = authz && await authz.response();
        const sent_to = authz_res ? authz_res.headers().location || null
                                  : null;
        if (sent_to) {
            const m = /#login=([^&]+)/.exec(sent_to);
            handle = m ? decodeURIComponent(m[1]) : null;
        }
        const asked = await pageView(page);
        const app = report.steps.app_login = {
            authorize_status: authz_res ? authz_res.status() : null,
            sent_to,
            handle,
            arrived: asked,
        };
        await page.screenshot({ path: join(opt.out, 'fido-app-login.png'),
                                fullPage: true });
        log('application login:', app.authorize_status, sent_to,
            asked.message.text);
        if (!asked.login_button_visible) {
            throw new Error('an application sent the browser here, and '
                            + 'there is no "Log in with this device" button');
        }

        // "Log in with this device": back to the application with a code
        const answered = page.waitForResponse((r) =>
            r.url() === `${PAGE}login` && r.request().method() === 'POST');
        const called_back = page.waitForResponse((r) =>
            r.url().startsWith(rp) && r.request().isNavigationRequest());
        // awaited below, or not at all when the login fails
        answered.catch(() => {});
        called_back.catch(() => {});
        await page.click('#login');
        const login_res = await answered;
        app.login_status = login_res.status();
        if (login_res.status() !== 200) {
            const m = await settledMessage(page);
            throw new Error(`the login for the application failed: `
                            + `${login_res.status()} ${m.text}`);
        }
        const back = await called_back;
        await page.waitForURL((u) => u.href.startsWith(rp),
                              { waitUntil: 'load', timeout: TIMEOUT });
        await page.screenshot({ path: join(opt.out, 'fido-app-back.png'),
                                fullPage: true });
        app.callback = {
            url: page.url(),
            status: back.status(),
            text: (await page.textContent('body')).trim(),
        };
        log('back at the application:', page.url());

        // 8. the same handle again (the page reloaded with it): the
        //    authorization is used, and the page says what the gateway says
        step = 'application login again';
        await openPage(page, `${PAGE}#login=${encodeURIComponent(handle)}`);
        await settledPage(page);
        const again_asked = await pageView(page);
        await page.click('#login');
        const again = await settledMessage(page);
        report.steps.app_login_again = {
            arrived: again_asked,
            message: again,
            url: page.url(),
        };
        await page.screenshot({ path: join(opt.out, 'fido-app-again.png'),
                                fullPage: true });
    }

    // 9. the token revoked elsewhere: "Check again" says so
    step = 'revoked elsewhere';
    const revoke = await fetchFromPage(page, '/hpki/revoke', null, {
        method: 'POST',
        headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
        body: 'token=' + encodeURIComponent(token2 || ''),
    });
    await page.click('#check');
    await page.waitForFunction(() => {
        const t = document.getElementById('token-status');
        return t.dataset.state !== 'checking' && t.dataset.state !== 'valid';
    }, null, { timeout: TIMEOUT });
    report.steps.revoked = {
        revoke_status: revoke.status,
        token_status: await page.evaluate(() => {
            const t = document.getElementById('token-status');
            return { state: t.dataset.state, text: t.textContent };
        }),
    };
    await page.screenshot({ path: join(opt.out, 'fido-revoked.png'),
                            fullPage: true });

    // 10. what the authenticator holds
    step = 'credentials';
    const { credentials } = await cdp.send('WebAuthn.getCredentials',
                                           { authenticatorId });
    report.steps.credentials = credentials.map((c) => ({
        credentialId: c.credentialId,
        isResidentCredential: c.isResidentCredential,
        rpId: c.rpId,
        userHandle: c.userHandle,
        signCount: c.signCount,
    }));

    step = 'done';
    report.ok = true;
} catch (e) {
    report.failed_step = step;
    report.error = String(e && e.stack || e);
    log(`step "${step}" failed:`, String(e));
    if (page) {
        try {
            report.failure_message = await page.evaluate(() =>
                document.getElementById('message').textContent);
            await page.screenshot({ path: join(opt.out, 'fido-failure.png'),
                                    fullPage: true });
        } catch (e2) {
            /* the page is gone */
        }
    }
} finally {
    if (browser) {
        await browser.close().catch(() => {});
    }
}

process.stdout.write(JSON.stringify(report, null, 1) + '\n');
process.exit(report.ok ? 0 : 1);
