/*
 * mdp-session.js: signing in to the Ganntec market data platform from a page.
 *
 *   <script src="static/mdp-session.js"></script>
 *   var session = MdpSession.create();     // the auth service beside the page, at /auth
 *   session.start();                       // the anonymous plan; resolves false without /auth
 *   MdpSession.panel(element, session);    // a sign-in form and the plan, drawn in element
 *   MdpChart.mount("chart", { session: session });
 *
 * A session is anonymous (the platform's anonymous plan, from GET /auth/v1/plans) until
 * signIn(email, password) trades the credentials for an access token and a refresh token
 * (POST /auth/v1/login); signUp makes the account first (POST /auth/v1/accounts). The access
 * token is renewed with the refresh token (POST /auth/v1/refresh) when four fifths of its
 * lifetime have passed; signOut ends the session on the server (POST /auth/v1/logout) and the
 * page is anonymous again. Listeners (onChange) hear "signed-in", "refreshed" and
 * "signed-out". request(method, path, body) calls another service beside the page with the
 * token (mdp-alerts.js: the main API).
 *
 * Both tokens live in this script's memory only: never in localStorage or sessionStorage,
 * which every script of the origin can read (an injected one too) long after the page is
 * gone. A reload therefore signs out. docs/auth.md, "The chart page", says more.
 */
(function () {
  "use strict";

  var SCRIPT_URL = document.currentScript ? document.currentScript.src : window.location.href;
  var SERVER = new URL("..", SCRIPT_URL).href.replace(/\/$/, "");
  var RENEW_AT = 0.8;          // of the access token's lifetime
  var RETRY_MS = 5000;         // a refresh that could not reach the service is tried again
  var MIN_RENEW_MS = 1000;

  /* A problem+json answer (or a network failure) as an Error with `status` and `code`. */
  function failure(response, body) {
    var detail = (body && (body.detail || body.title)) || "the auth service answered " +
      response.status;
    var error = new Error(detail);
    error.status = response.status;
    error.code = body && typeof body.type === "string" ? body.type.split("/").pop() : null;
    return error;
  }

  function call(base, method, path, body, token) {
    var init = { method: method, headers: { Accept: "application/json" }, cache: "no-store",
                 credentials: "omit" };
    if (token) init.headers.Authorization = "Bearer " + token;
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    return fetch(base + path, init).then(function (response) {
      if (response.status === 204) return null;
      return response.json().catch(function () { return null; }).then(function (parsed) {
        if (!response.ok) throw failure(response, parsed);
        return parsed;
      });
    });
  }

  /* The claims of a JWT, read for display only: the services verify it, not the page. */
  function claimsOf(token) {
    var payload = token.split(".")[1] || "";
    var base64 = payload.replace(/-/g, "+").replace(/_/g, "/");
    while (base64.length % 4) base64 += "=";
    try {
      return JSON.parse(decodeURIComponent(Array.prototype.map.call(atob(base64), function (c) {
        return "%" + ("00" + c.charCodeAt(0).toString(16)).slice(-2);
      }).join("")));
    } catch (e) {
      return {};
    }
  }

  /* "real-time" or "delayed 15 min" for a delay in seconds. */
  function delayLabel(seconds) {
    if (!seconds) return "real-time";
    if (seconds % 60 === 0) return "delayed " + seconds / 60 + " min";
    return "delayed " + seconds + " s";
  }

  function Session(options) {
    this.base = (options && options.base != null ? options.base : SERVER).replace(/\/$/, "");
    this.available = false;
    this.anonymous = null;   // the anonymous plan's entitlements, null when there is none
    this.email = null;
    this.access = null;      // the access token
    this.claims = null;
    this.refreshToken = null;
    this.timer = null;
    this.renewing = null;    // the refresh in flight, shared by whoever asks meanwhile
    this.listeners = [];
  }

  /* Read the plans: resolves true when an auth service answers beside the page. */
  Session.prototype.start = function () {
    var self = this;
    return call(this.base, "GET", "/auth/v1/plans").then(function (body) {
      self.available = true;
      self.anonymous = body.anonymous ? body.plans[body.anonymous] || null : null;
      self.signup = Boolean(body.signup);
      self.emit("started");
      return true;
    }).catch(function () {
      self.available = false;
      self.emit("started");
      return false;
    });
  };

  Session.prototype.onChange = function (listener) {
    this.listeners.push(listener);
  };

  Session.prototype.emit = function (kind) {
    var self = this;
    this.listeners.slice().forEach(function (listener) { listener(kind, self); });
  };

  /* The access token, or null while anonymous. */
  Session.prototype.token = function () {
    return this.access;
  };

  Session.prototype.signedIn = function () {
    return this.access !== null;
  };

  /* A request with the access token to a service beside the page (the main API at /api):
     the parsed JSON answer (null for 204), or an Error with `status` and `code`. A 401 (the
     token expired, or its key was rotated) gets a fresh token and one more try. */
  Session.prototype.request = function (method, path, body) {
    var self = this;
    return call(this.base, method, path, body, this.access).catch(function (error) {
      if (error.status !== 401 || !self.signedIn()) throw error;
      return self.refresh().then(function () {
        return call(self.base, method, path, body, self.access);
      });
    });
  };

  /* What the page shows: the plan's name and delay, and who is signed in. */
  Session.prototype.plan = function () {
    var source = this.claims || this.anonymous;
    if (!source) return null;
    return {
      name: source.plan,
      delay: Number(source.delay) || 0,
      label: delayLabel(Number(source.delay) || 0),
      instruments: source.instruments,
      anonymous: this.claims === null,
      email: this.email,
    };
  };

  Session.prototype.signIn = function (email, password) {
    var self = this;
    return call(this.base, "POST", "/auth/v1/login", { email: email, password: password })
      .then(function (session) {
        self.email = email.trim().toLowerCase();
        self.take(session);
        self.emit("signed-in");
        return self.plan();
      });
  };

  Session.prototype.signUp = function (email, password) {
    var self = this;
    return call(this.base, "POST", "/auth/v1/accounts", { email: email, password: password })
      .then(function () { return self.signIn(email, password); });
  };

  /* End the session here at once, and on the server (a failure there changes nothing here:
     the tokens are gone from this page either way). */
  Session.prototype.signOut = function () {
    var refreshToken = this.refreshToken;
    var wasIn = this.signedIn();
    this.forget();
    if (wasIn) this.emit("signed-out");
    if (!refreshToken) return Promise.resolve();
    return call(this.base, "POST", "/auth/v1/logout", { refresh_token: refreshToken })
      .catch(function () { /* expired or revoked already */ });
  };

  /* The next access token now (a service refused the one held: expired, or a key rotated
     meanwhile). Resolves with the token, or null when the session ended (anonymous again). */
  Session.prototype.refresh = function () {
    var self = this;
    if (!this.refreshToken) return Promise.resolve(null);
    if (this.renewing) return this.renewing;
    var spent = this.refreshToken;
    this.renewing = call(this.base, "POST", "/auth/v1/refresh", { refresh_token: spent })
      .then(function (session) {
        self.renewing = null;
        if (self.refreshToken !== spent) return self.access;  // signed out or in meanwhile
        self.take(session);
        self.emit("refreshed");
        return self.access;
      }, function (error) {
        self.renewing = null;
        if (self.refreshToken !== spent) return self.access;
        if (error.status === undefined || error.status >= 500 || error.status === 429) {
          // not a refusal: try again while the access token lasts
          var left = self.claims ? self.claims.exp * 1000 - Date.now() : 0;
          if (left > RETRY_MS) {
            self.schedule(RETRY_MS);
            return self.access;
          }
        }
        self.forget();
        self.emit("signed-out");
        return null;
      });
    return this.renewing;
  };

  Session.prototype.take = function (session) {
    this.access = session.access_token;
    this.claims = claimsOf(session.access_token);
    this.refreshToken = session.refresh_token;
    this.schedule(Math.max(MIN_RENEW_MS, session.expires_in * 1000 * RENEW_AT));
  };

  Session.prototype.schedule = function (delayMs) {
    var self = this;
    clearTimeout(this.timer);
    this.timer = setTimeout(function () { self.refresh(); }, delayMs);
  };

  Session.prototype.forget = function () {
    clearTimeout(this.timer);
    this.timer = null;
    this.access = null;
    this.claims = null;
    this.refreshToken = null;
    this.email = null;
  };

  // -- the sign-in panel -------------------------------------------------------------------

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    (children || []).forEach(function (c) {
      node.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
    });
    return node;
  }

  /* The plan and its delay, a sign-in form (email, password; sign up when the platform
     takes new accounts) or who is signed in and a sign-out button. */
  function panel(target, session) {
    var root = typeof target === "string" ? document.getElementById(target) : target;
    root.classList.add("mdp-session");
    var plan = el("span", { class: "mdp-session-plan" });
    var email = el("input", { type: "email", name: "email", placeholder: "email",
      autocomplete: "username", required: "", maxlength: "254", "aria-label": "email" });
    var password = el("input", { type: "password", name: "password", placeholder: "password",
      autocomplete: "current-password", required: "", minlength: "10", maxlength: "256",
      "aria-label": "password" });
    var signIn = el("button", { type: "submit", class: "mdp-session-sign-in" }, ["Sign in"]);
    var signUp = el("button", { type: "button", class: "mdp-session-sign-up" }, ["Sign up"]);
    var form = el("form", { class: "mdp-session-form", hidden: "" },
      [email, password, signIn, signUp]);
    var who = el("span", { class: "mdp-session-who" });
    var signOut = el("button", { type: "button", class: "mdp-session-sign-out" }, ["Sign out"]);
    var account = el("span", { class: "mdp-session-account", hidden: "" }, [who, signOut]);
    var error = el("span", { class: "mdp-session-error", role: "alert" });
    [plan, form, account, error].forEach(function (node) { root.appendChild(node); });

    function show() {
      var current = session.plan();
      plan.textContent = current
        ? current.name + " plan" + (current.anonymous ? " (anonymous)" : "") + " · " +
          current.label
        : session.available ? "sign in to see the market" : "";
      plan.setAttribute("data-delay", current ? String(current.delay) : "");
      var signedIn = session.signedIn();
      form.hidden = !session.available || signedIn;
      signUp.hidden = !session.signup;
      account.hidden = !signedIn;
      who.textContent = signedIn ? session.email : "";
    }

    function busy(promise) {
      error.textContent = "";
      [signIn, signUp].forEach(function (b) { b.disabled = true; });
      return promise.then(function () {
        password.value = "";
      }, function (failed) {
        error.textContent = failed.message;
      }).then(function () {
        [signIn, signUp].forEach(function (b) { b.disabled = false; });
      });
    }

    form.addEventListener("submit", function (event) {
      event.preventDefault();
      busy(session.signIn(email.value, password.value));
    });
    signUp.addEventListener("click", function () {
      if (form.reportValidity()) busy(session.signUp(email.value, password.value));
    });
    signOut.addEventListener("click", function () {
      error.textContent = "";
      session.signOut();
    });
    session.onChange(show);
    show();
    return { refresh: show };
  }

  function create(options) {
    return new Session(options || {});
  }

  window.MdpSession = { create: create, panel: panel, delayLabel: delayLabel, version: "1" };
})();
