/*
 * The FIDO page of the HPKI gateway: registers this device's platform
 * authenticator with an enrolment code, logs in with it, and shows who the
 * token says the user is.  Plain JavaScript, no framework, no external
 * resources, no inline code: it runs under Content-Security-Policy:
 * default-src 'self'.  See docs/fido.md.
 *
 * The endpoints are found relative to this page (served at /hpki/fido/):
 *
 *   register/options, register, login/options, login   the FIDO API
 *   ../whoami                                           the token check
 *   ../revoke                                           RFC 7009 revocation
 */

'use strict';

(function () {

    var API = {
        registerOptions: 'register/options',
        register: 'register',
        loginOptions: 'login/options',
        login: 'login',
        whoami: '../whoami',
        revoke: '../revoke'
    };

    var SESSION_KEY = 'hpki.fido.session';
    var CHECK_EVERY_MS = 60000;

    var el = {};
    var checkTimer = null;
    var busy = false;
    var supported = true;
    var pendingLogin = null;    /* #login=: an OIDC authorization */


    /* --- base64url ------------------------------------------------------ */

    function b64urlToBytes(s) {
        var b64, bin, out, i;

        if (typeof s !== 'string') {
            throw new TypeError('expected a base64url string');
        }

        b64 = s.replace(/-/g, '+').replace(/_/g, '/');
        while (b64.length % 4) {
            b64 += '=';
        }

        bin = atob(b64);
        out = new Uint8Array(bin.length);
        for (i = 0; i < bin.length; i++) {
            out[i] = bin.charCodeAt(i);
        }
        return out.buffer;
    }

    function bytesToB64url(buf) {
        var bytes, bin, i;

        if (buf === null || buf === undefined) {
            return null;
        }

        bytes = buf instanceof ArrayBuffer ? new Uint8Array(buf)
            : new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
        bin = '';
        for (i = 0; i < bytes.length; i++) {
            bin += String.fromCharCode(bytes[i]);
        }
        return btoa(bin).replace(/\+/g, '-').replace(/\//g, '_')
            .replace(/=+$/, '');
    }


    /* --- WebAuthn JSON forms (Level 3), with a fallback ----------------- */

    function creationOptions(json) {
        var o;

        if (typeof PublicKeyCredential.parseCreationOptionsFromJSON
            === 'function')
        {
            return PublicKeyCredential.parseCreationOptionsFromJSON(json);
        }

        o = Object.assign({}, json);
        o.challenge = b64urlToBytes(json.challenge);
        o.user = Object.assign({}, json.user, {
            id: b64urlToBytes(json.user.id)
        });
        if (Array.isArray(json.excludeCredentials)) {
            o.excludeCredentials = json.excludeCredentials.map(descriptor);
        }
        return o;
    }

    function requestOptions(json) {
        var o;

        if (typeof PublicKeyCredential.parseRequestOptionsFromJSON
            === 'function')
        {
            return PublicKeyCredential.parseRequestOptionsFromJSON(json);
        }

        o = Object.assign({}, json);
        o.challenge = b64urlToBytes(json.challenge);
        if (Array.isArray(json.allowCredentials)) {
            o.allowCredentials = json.allowCredentials.map(descriptor);
        }
        return o;
    }

    function descriptor(d) {
        return Object.assign({}, d, { id: b64urlToBytes(d.id) });
    }

    function credentialJSON(cred) {
        var r, out;

        if (typeof cred.toJSON === 'function') {
            return cred.toJSON();
        }

        r = cred.response;
        out = {
            id: cred.id,
            rawId: bytesToB64url(cred.rawId),
            type: cred.type,
            authenticatorAttachment: cred.authenticatorAttachment || null,
            clientExtensionResults: cred.getClientExtensionResults
                ? cred.getClientExtensionResults() : {},
            response: {
                clientDataJSON: bytesToB64url(r.clientDataJSON)
            }
        };

        if (r.attestationObject) {
            /* AuthenticatorAttestationResponse */
            out.response.attestationObject =
                bytesToB64url(r.attestationObject);
            out.response.transports = typeof r.getTransports === 'function'
                ? r.getTransports() : [];
            if (typeof r.getAuthenticatorData === 'function') {
                out.response.authenticatorData =
                    bytesToB64url(r.getAuthenticatorData());
            }
            if (typeof r.getPublicKeyAlgorithm === 'function') {
                out.response.publicKeyAlgorithm = r.getPublicKeyAlgorithm();
            }
        } else {
            /* AuthenticatorAssertionResponse */
            out.response.authenticatorData =
                bytesToB64url(r.authenticatorData);
            out.response.signature = bytesToB64url(r.signature);
            out.response.userHandle = bytesToB64url(r.userHandle);
        }

        return out;
    }


    /* --- talking to the gateway ----------------------------------------- */

    function ApiError(message, status, code) {
        this.name = 'ApiError';
        this.message = message;
        this.status = status;
        this.code = code;
    }
    ApiError.prototype = Object.create(Error.prototype);

    async function readJSON(res) {
        var text = await res.text();

        if (text === '') {
            return null;
        }
        try {
            return JSON.parse(text);
        } catch (e) {
            return null;
        }
    }

    async function postJSON(path, body) {
        var res, json;

        try {
            res = await fetch(path, {
                method: 'POST',
                headers: {
                    'Content-Type': 'application/json',
                    'Accept': 'application/json'
                },
                body: JSON.stringify(body),
                credentials: 'same-origin',
                cache: 'no-store'
            });
        } catch (e) {
            throw new ApiError('The gateway cannot be reached. Check the '
                + 'network and try again.', 0, 'network');
        }

        json = await readJSON(res);

        if (!res.ok) {
            throw new ApiError(
                (json && (json.error_description || json.error))
                    || 'The gateway answered ' + res.status + '.',
                res.status, json && json.error);
        }

        if (json === null) {
            throw new ApiError('The gateway sent an answer this page does '
                + 'not understand.', res.status, 'bad_answer');
        }

        return json;
    }

    function webauthnMessage(e, creating) {
        switch (e && e.name) {
        case 'NotAllowedError':
            return 'The request was cancelled or timed out. Try again.';
        case 'InvalidStateError':
            return creating
                ? 'This device is already registered for this user.'
                : 'This device cannot be used for this login.';
        case 'SecurityError':
            return 'This address is not allowed to use this device\'s '
                + 'key (the page must be opened from the gateway\'s own '
                + 'address).';
        case 'NotSupportedError':
            return 'This device does not support what the gateway asks '
                + 'for (a key that verifies who you are).';
        case 'AbortError':
            return 'The request was cancelled.';
        default:
            return (e && e.message) || String(e);
        }
    }


    /* --- what the page shows -------------------------------------------- */

    function say(state, text) {
        el.message.dataset.state = text ? state : 'idle';
        el.message.textContent = text || '';
        el.message.setAttribute('role', state === 'error' ? 'alert'
            : 'status');
    }

    function setBusy(on) {
        busy = on;
        [el.logout, el.check].forEach(function (b) {
            b.disabled = on;
        });
        [el.register, el.login].forEach(function (b) {
            b.disabled = on || !supported;
        });
        document.body.setAttribute('aria-busy', on ? 'true' : 'false');
    }

    function hhmm(ms) {
        var d = new Date(ms);

        return String(d.getHours()).padStart(2, '0') + ':'
            + String(d.getMinutes()).padStart(2, '0');
    }

    /* "09:28", "09:28 tomorrow" or "09:28 on 2026-11-26" */

    function until(ms) {
        var d = new Date(ms), today = new Date(), tomorrow = new Date();

        tomorrow.setDate(today.getDate() + 1);

        if (d.toDateString() === today.toDateString()) {
            return hhmm(ms);
        }
        if (d.toDateString() === tomorrow.toDateString()) {
            return hhmm(ms) + ' tomorrow';
        }
        return hhmm(ms) + ' on ' + d.getFullYear() + '-'
            + String(d.getMonth() + 1).padStart(2, '0') + '-'
            + String(d.getDate()).padStart(2, '0');
    }

    /* the token's exp, read (not verified) for display only */

    function tokenExpiry(token, fallback) {
        var parts = String(token).split('.'), claims;

        if (parts.length === 3) {
            try {
                claims = JSON.parse(new TextDecoder().decode(
                    b64urlToBytes(parts[1])));
                if (typeof claims.exp === 'number') {
                    return claims.exp * 1000;
                }
            } catch (e) {
                /* not a JWT we can read: use expires_in */
            }
        }
        return fallback;
    }

    function loadSession() {
        try {
            return JSON.parse(sessionStorage.getItem(SESSION_KEY));
        } catch (e) {
            return null;
        }
    }

    function saveSession(s) {
        sessionStorage.setItem(SESSION_KEY, JSON.stringify(s));
    }

    function clearSession() {
        sessionStorage.removeItem(SESSION_KEY);
        if (checkTimer !== null) {
            clearInterval(checkTimer);
            checkTimer = null;
        }
    }

    function showSession(s) {
        var loggedIn = s !== null;

        el.session.hidden = !loggedIn;
        /* an application's login needs the button, logged in here or not */
        el.loginSection.hidden = loggedIn && pendingLogin === null;
        el.registerSection.hidden = loggedIn;

        if (!loggedIn) {
            el.name.textContent = '';
            el.role.textContent = '';
            el.userId.textContent = '';
            tokenStatus('unknown', '');
            return;
        }

        el.name.textContent = s.user.name || s.user.id || '';
        el.role.textContent = s.user.role || '(none)';
        el.userId.textContent = s.user.id || '';
    }

    function tokenStatus(state, text) {
        el.tokenStatus.dataset.state = state;
        el.tokenStatus.textContent = text;
    }

    /* GET ../whoami with the token: 200 means valid, 401 expired or revoked */

    async function checkToken() {
        var s = loadSession(), res, json;

        if (s === null) {
            return;
        }

        if (Date.now() >= s.expires_at) {
            tokenStatus('invalid', 'expired / revoked (expired at '
                + until(s.expires_at) + ')');
            el.loginSection.hidden = false;
            return;
        }

        tokenStatus('checking', 'checking…');

        try {
            res = await fetch(API.whoami, {
                headers: {
                    'Authorization': 'Bearer ' + s.access_token,
                    'Accept': 'application/json'
                },
                credentials: 'omit',
                cache: 'no-store'
            });
        } catch (e) {
            tokenStatus('unknown', 'cannot check now (no connection)');
            return;
        }

        json = await readJSON(res);

        if (res.status === 200 && json) {
            tokenStatus('valid', 'valid until ' + until(s.expires_at));
            if (json.role && json.role !== s.user.role) {
                el.role.textContent = json.role;
            }
            s.whoami = json;
            saveSession(s);
            return;
        }

        if (res.status === 401) {
            tokenStatus('invalid', 'expired / revoked');
            el.loginSection.hidden = false;
            if (pendingLogin === null) {
                /* else the application's request stays on the page */
                say('info', 'Log in again with this device for a new '
                    + 'token.');
            }
            return;
        }

        tokenStatus('unknown', 'cannot check now ('
            + ((json && json.error_description) || 'status ' + res.status)
            + ')');
    }

    function startChecks() {
        if (checkTimer === null) {
            checkTimer = setInterval(checkToken, CHECK_EVERY_MS);
        }
        return checkToken();
    }


    /* --- the ceremonies ------------------------------------------------- */

    function normaliseCode(s) {
        return s.replace(/\s+/g, '').toUpperCase();
    }

    async function register(ev) {
        var code, options, cred, answer, who;

        ev.preventDefault();
        if (busy) {
            return;
        }

        code = normaliseCode(el.code.value);
        if (code === '') {
            say('error', 'Enter the enrolment code first.');
            el.code.focus();
            return;
        }

        setBusy(true);
        say('busy', 'Asking the gateway…');

        try {
            options = await postJSON(API.registerOptions,
                                     { enrollment_code: code });

            say('busy', 'Confirm with this device (fingerprint, face or '
                + 'screen lock)…');

            try {
                cred = await navigator.credentials.create({
                    publicKey: creationOptions(options)
                });
            } catch (e) {
                throw new ApiError(webauthnMessage(e, true), 0, e.name);
            }

            if (cred === null) {
                throw new ApiError('No credential was created.', 0, 'none');
            }

            say('busy', 'Registering…');

            answer = await postJSON(API.register, {
                enrollment_code: code,
                credential: credentialJSON(cred)
            });

            who = answer.user && typeof answer.user === 'object'
                ? (answer.user.name || answer.user.id) : answer.user;

            el.code.value = '';
            say('ok', 'This device is registered'
                + (who ? ' for ' + who : '')
                + '. You can now log in with it.');
            el.login.focus();

        } catch (e) {
            say('error', e.message || String(e));
        } finally {
            setBusy(false);
        }
    }

    async function login(ev) {
        var user, options, cred, answer, session;

        ev.preventDefault();
        if (busy) {
            return;
        }

        user = el.user.value.trim();

        setBusy(true);
        say('busy', 'Asking the gateway…');

        try {
            options = await postJSON(API.loginOptions,
                                     user === '' ? {} : { user: user });

            say('busy', 'Confirm with this device…');

            try {
                cred = await navigator.credentials.get({
                    publicKey: requestOptions(options)
                });
            } catch (e) {
                throw new ApiError(webauthnMessage(e, false), 0, e.name);
            }

            if (cred === null) {
                throw new ApiError('No credential was chosen.', 0, 'none');
            }

            say('busy', 'Logging in…');

            answer = await postJSON(API.login, pendingLogin
                ? { credential: credentialJSON(cred), login: pendingLogin }
                : { credential: credentialJSON(cred) });

            /* an application's OpenID Connect login: back to it */

            if (pendingLogin && typeof answer.redirect_to === 'string') {
                pendingLogin = null;
                say('ok', 'Logged in. Returning to the application…');
                location.assign(answer.redirect_to);
                return;
            }

            if (typeof answer.access_token !== 'string') {
                throw new ApiError('The gateway sent no token.', 0,
                                   'bad_answer');
            }

            session = {
                access_token: answer.access_token,
                token_type: answer.token_type,
                scope: answer.scope,
                expires_at: tokenExpiry(answer.access_token,
                    Date.now() + (answer.expires_in || 0) * 1000),
                user: answer.user && typeof answer.user === 'object'
                    ? answer.user : { id: user }
            };

            saveSession(session);
            showSession(session);
            say('ok', 'Logged in.');
            await startChecks();
            el.logout.focus();

        } catch (e) {
            say('error', e.message || String(e));
        } finally {
            setBusy(false);
        }
    }

    /* RFC 7009: POST token=... to ../revoke, then forget the session */

    async function logout() {
        var s = loadSession(), ok = true, res;

        if (busy) {
            return;
        }
        setBusy(true);

        if (s !== null) {
            try {
                res = await fetch(API.revoke, {
                    method: 'POST',
                    headers: {
                        'Content-Type': 'application/x-www-form-urlencoded'
                    },
                    body: new URLSearchParams({
                        token: s.access_token,
                        token_type_hint: 'access_token'
                    }),
                    credentials: 'omit',
                    cache: 'no-store'
                });
                ok = res.ok;
            } catch (e) {
                ok = false;
            }
        }

        clearSession();
        showSession(null);
        setBusy(false);

        if (ok) {
            say('ok', 'Logged out. The token is revoked.');
        } else {
            say('error', 'Logged out on this device, but the gateway could '
                + 'not be reached to revoke the token.');
        }
        el.login.focus();
    }


    /* --- start ---------------------------------------------------------- */

    /* #code=XXXX from the QR code's link: fill it in, then take it out of
       the address bar (and the history) so that it is not left behind */

    function codeFromFragment() {
        var params, code;

        if (location.hash.length < 2) {
            return;
        }

        params = new URLSearchParams(location.hash.slice(1));
        code = params.get('code');

        /* #login=HANDLE: an application sent the user here to log in */

        if (params.get('login')) {
            pendingLogin = params.get('login');
            el.loginSection.hidden = false;
            say('info', 'An application asks you to log in. '
                + 'Press "Log in with this device".');
            el.login.focus();
        }

        history.replaceState(history.state, '',
                             location.pathname + location.search);

        if (code) {
            el.code.value = normaliseCode(code);
            say('info', 'The enrolment code is filled in from the link. '
                + 'Press "Register this device".');
            el.register.focus();
        }
    }

    function start() {
        var s, ids = ['message', 'session', 'name', 'role', 'user-id',
                   'token-status', 'check', 'logout', 'login-section',
                   'login-form', 'user', 'login', 'register-section',
                   'register-form', 'code', 'register'];

        ids.forEach(function (id) {
            el[id.replace(/-([a-z])/g, function (m, c) {
                return c.toUpperCase();
            })] = document.getElementById(id);
        });

        el.registerForm.addEventListener('submit', register);
        el.loginForm.addEventListener('submit', login);
        el.logout.addEventListener('click', logout);
        el.check.addEventListener('click', function () {
            checkToken();
        });
        window.addEventListener('hashchange', codeFromFragment);
        document.addEventListener('visibilitychange', function () {
            if (document.visibilityState === 'visible') {
                checkToken();
            }
        });

        codeFromFragment();

        if (!window.isSecureContext || !window.PublicKeyCredential
            || !navigator.credentials)
        {
            supported = false;
            setBusy(false);
            say('error', 'This browser cannot use a device key on this page: '
                + 'it needs a current browser and an https:// address.');
        }

        s = loadSession();
        if (s !== null && s.user && s.access_token) {
            showSession(s);
            startChecks();
        } else {
            clearSession();
            showSession(null);
        }

        document.documentElement.dataset.ready = 'true';
    }

    if (document.readyState === 'loading') {
        document.addEventListener('DOMContentLoaded', start);
    } else {
        start();
    }

})();
