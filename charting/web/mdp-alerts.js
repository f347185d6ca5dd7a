/*
 * mdp-alerts.js: watchlists and price alerts beside the live chart.
 *
 *   <script src="static/mdp-session.js"></script>
 *   <script src="static/mdp-chart.js"></script>
 *   <script src="static/mdp-alerts.js"></script>
 *   MdpChart.mount("chart", { session: session }).then(function (chart) {
 *     MdpAlerts.mount("watch", chart, session);
 *   });
 *
 * Signed in, the panel shows the account's watchlists (the main API, /api/v1/watchlists):
 * "+ watch" adds the chart's instrument to the first one (made when there is none), a click
 * on an instrument shows it on the chart, "×" takes it off. "Set alert" arms the chart: the
 * next click on the candles sets an alert at that price (POST /api/v1/alerts): `cross-up`
 * when the price is above the last close, `cross-down` below it, on ticks, once. Each active
 * alert of the instrument shown is a dashed line on the chart. The account's firings come
 * over the chart's own WebSocket, on the private `alerts` channel (docs/protocol.md): each
 * one is a toast, and its line turns solid and says "fired". A firing heard twice (a resume,
 * the bus delivering again) is shown once, by its `fire_id`.
 *
 * Anonymous, the panel only says that alerts need an account. docs/main-api.md, "The chart
 * page", says more.
 */
(function () {
  "use strict";

  var API = "/api/v1";
  var SNAPSHOT = 20;           // past firings asked for on subscribe (not toasted)
  var TOAST_MS = 15000;
  var MAX_TOASTS = 5;
  var MAX_SEEN = 1000;         // fire ids remembered, to drop a repeat
  var RETRY_MS = 5000;         // an `alerts` subscribe the gateway could not serve
  var NEW_WATCHLIST = "My watchlist";
  var LINE = { armed: "#f0a54a", fired: "#4fd1a5" };
  var ARROWS = { "cross-up": "↑", "cross-down": "↓", above: "≥", below: "≤" };
  var WORDS = {
    "cross-up": "crossed up through", "cross-down": "crossed down through",
    above: "is at or above", below: "is at or below",
    "move-up": "rose by", "move-down": "fell by",
  };

  var el = window.MdpChart.el;  // the chart's own element helper (mdp-chart.js loads first)

  function Panel(root, chart, session) {
    this.root = root;
    this.chart = chart;
    this.session = session;
    this.watchlists = [];
    this.alerts = {};          // active (and fired this session) alerts, by id
    this.lines = {};           // the price lines drawn, by alert id
    this.seen = {};            // fire ids shown
    this.seenCount = 0;
    this.toasted = [];         // the texts of the toasts shown (for tests and curious users)
    this.arming = false;
    this.seq = null;           // the `alerts` channel's last seq, and its epoch
    this.epoch = null;
    this.subscribeId = null;
    this.live = false;
    this.generation = 0;       // bumped by each sign in or out
    this.build();
    var self = this;
    session.onChange(function (kind) { self.identityChanged(kind); });
    chart.onSelect(function () { self.drawLines(); self.showAlerts(); });
    chart.onClick(function (point) { self.clicked(point); });
    chart.onMessage(function (message) { self.receive(message); });
    chart.onConnected(function () { self.subscribe(); });
    this.identityChanged("started");
  }

  Panel.prototype.build = function () {
    var self = this;
    this.root.classList.add("mdp-alerts");
    this.note = el("p", { class: "mdp-alerts-note" });
    this.watchHead = el("div", { class: "mdp-alerts-head" }, [el("h2", {}, ["Watchlist"])]);
    this.addButton = el("button", { type: "button", class: "mdp-alerts-watch" }, ["+ watch"]);
    this.watchHead.appendChild(this.addButton);
    this.watchBox = el("ul", { class: "mdp-alerts-watchlist", "aria-label": "watchlist" });
    this.alertHead = el("div", { class: "mdp-alerts-head" }, [el("h2", {}, ["Alerts"])]);
    this.armButton = el("button", { type: "button", class: "mdp-alerts-arm",
                                    "aria-pressed": "false" }, ["Set alert"]);
    this.alertHead.appendChild(this.armButton);
    this.alertBox = el("ul", { class: "mdp-alerts-list", "aria-label": "alerts" });
    this.error = el("p", { class: "mdp-alerts-error", role: "alert" });
    this.body = el("div", { class: "mdp-alerts-body" },
                   [this.watchHead, this.watchBox, this.alertHead, this.alertBox]);
    [this.note, this.body, this.error].forEach(function (n) { self.root.appendChild(n); });
    this.toasts = el("div", { class: "mdp-alerts-toasts", role: "status", "aria-live": "polite" });
    document.body.appendChild(this.toasts);
    this.addButton.addEventListener("click", function () { self.watchShown(); });
    this.armButton.addEventListener("click", function () { self.arm(!self.arming); });
  };

  Panel.prototype.say = function (text) {
    this.error.textContent = text || "";
  };

  Panel.prototype.failed = function (what) {
    var self = this;
    return function (error) {
      self.say(what + ": " + (error.message || error));
    };
  };

  /* Signed in: load the account's things; signed out: forget them. */
  Panel.prototype.identityChanged = function (kind) {
    if (kind === "refreshed") return;  // the same account
    this.generation += 1;
    this.clearLines();
    this.alerts = {};
    this.watchlists = [];
    this.seq = null;
    this.epoch = null;
    this.live = false;
    this.arm(false);
    this.say("");
    var signedIn = this.session.signedIn();
    this.body.hidden = !signedIn;
    this.note.textContent = signedIn ? "" : "Sign in to keep a watchlist and set price alerts.";
    if (!signedIn) return;
    this.showWatchlists();
    this.load();
  };

  Panel.prototype.load = function () {
    var self = this;
    var generation = this.generation;
    return Promise.all([
      this.session.request("GET", API + "/watchlists"),
      this.session.request("GET", API + "/alerts?status=active&limit=500"),
    ]).then(function (answers) {
      if (generation !== self.generation) return;
      self.watchlists = answers[0].watchlists;
      answers[1].alerts.forEach(function (alert) { self.alerts[alert.alert_id] = alert; });
      self.showWatchlists();
      self.drawLines();
      self.showAlerts();
    }).catch(this.failed("watchlists and alerts"));
  };

  // -- watchlists ------------------------------------------------------------------------

  Panel.prototype.showWatchlists = function () {
    var self = this;
    this.watchBox.textContent = "";
    var list = this.watchlists[0];
    if (!list || !list.instruments.length) {
      this.watchBox.appendChild(el("li", { class: "mdp-alerts-empty" },
                                   ["Nothing watched yet: \u201c+ watch\u201d adds the chart's instrument."]));
      return;
    }
    list.instruments.forEach(function (instrument) {
      var show = el("button", { type: "button", class: "mdp-alerts-instrument" }, [instrument]);
      var drop = el("button", { type: "button", class: "mdp-alerts-drop",
                                "aria-label": "stop watching " + instrument }, ["×"]);
      show.addEventListener("click", function () {
        self.chart.select(instrument, self.chart.interval());
      });
      drop.addEventListener("click", function () { self.unwatch(instrument); });
      self.watchBox.appendChild(el("li", { "data-instrument": instrument }, [show, drop]));
    });
  };

  /* Add the chart's instrument to the first watchlist (made when there is none). */
  Panel.prototype.watchShown = function () {
    var instrument = this.chart.instrument();
    var list = this.watchlists[0];
    if (!instrument) return Promise.resolve();
    if (!list) {
      return this.saved(this.session.request("POST", API + "/watchlists",
                                             { name: NEW_WATCHLIST, instruments: [instrument] }));
    }
    if (list.instruments.indexOf(instrument) >= 0) return Promise.resolve();
    return this.saved(this.session.request("PATCH", API + "/watchlists/" + list.watchlist_id,
                                           { instruments: list.instruments.concat([instrument]) }));
  };

  Panel.prototype.unwatch = function (instrument) {
    var list = this.watchlists[0];
    if (!list) return Promise.resolve();
    var kept = list.instruments.filter(function (i) { return i !== instrument; });
    return this.saved(this.session.request("PATCH", API + "/watchlists/" + list.watchlist_id,
                                           { instruments: kept }));
  };

  Panel.prototype.saved = function (request) {
    var self = this;
    var generation = this.generation;
    return request.then(function (body) {
      if (generation !== self.generation) return;
      var saved = body.watchlist;
      var at = self.watchlists.findIndex(function (w) { return w.watchlist_id === saved.watchlist_id; });
      if (at >= 0) self.watchlists[at] = saved; else self.watchlists.unshift(saved);
      self.say("");
      self.showWatchlists();
    }).catch(this.failed("watchlist"));
  };

  // -- alerts ----------------------------------------------------------------------------

  Panel.prototype.arm = function (on) {
    this.arming = on && this.session.signedIn();
    this.armButton.setAttribute("aria-pressed", this.arming ? "true" : "false");
    this.chart.canvas().classList.toggle("mdp-alerts-arming", this.arming);
  };

  /* A click on the chart while armed: an alert at that price. */
  Panel.prototype.clicked = function (point) {
    if (!this.arming) return;
    this.arm(false);
    var last = this.chart.lastClose();
    var instrument = this.chart.instrument();
    if (last === null || !instrument) {
      this.say("alert: no price on the chart yet");
      return;
    }
    var threshold = point.price.toFixed(this.chart.precision());
    var condition = Number(threshold) > last ? "cross-up" : "cross-down";
    this.create({ instrument: instrument, condition: condition, threshold: threshold });
  };

  Panel.prototype.create = function (spec) {
    var self = this;
    var generation = this.generation;
    return this.session.request("POST", API + "/alerts", spec).then(function (body) {
      if (generation !== self.generation) return;
      self.alerts[body.alert.alert_id] = body.alert;
      self.say("");
      self.drawLines();
      self.showAlerts();
    }).catch(this.failed("alert"));
  };

  Panel.prototype.remove = function (alertId) {
    var self = this;
    return this.session.request("DELETE", API + "/alerts/" + encodeURIComponent(alertId))
      .then(function () {
        delete self.alerts[alertId];
        self.drawLines();
        self.showAlerts();
      }).catch(this.failed("alert"));
  };

  Panel.prototype.shownAlerts = function () {
    var instrument = this.chart.instrument();
    var self = this;
    return Object.keys(this.alerts).map(function (id) { return self.alerts[id]; })
      .filter(function (a) { return a.instrument === instrument && a.source === "ticks"; })
      .sort(function (a, b) { return Number(b.threshold) - Number(a.threshold); });
  };

  Panel.prototype.label = function (alert) {
    return (ARROWS[alert.condition] || alert.condition) + " " + alert.threshold;
  };

  Panel.prototype.showAlerts = function () {
    var self = this;
    this.alertBox.textContent = "";
    var shown = this.shownAlerts();
    if (!shown.length) {
      this.alertBox.appendChild(el("li", { class: "mdp-alerts-empty" },
                                   ["\u201cSet alert\u201d, then click a price on the chart."]));
    }
    shown.forEach(function (alert) {
      var drop = el("button", { type: "button", class: "mdp-alerts-drop",
                                "aria-label": "delete the alert " + self.label(alert) }, ["×"]);
      drop.addEventListener("click", function () { self.remove(alert.alert_id); });
      self.alertBox.appendChild(el("li", { "data-alert": alert.alert_id, "data-status": alert.status },
                                   [el("span", {}, [self.label(alert)]),
                                    el("span", { class: "mdp-alerts-status" }, [alert.status]), drop]));
    });
  };

  Panel.prototype.clearLines = function () {
    var self = this;
    Object.keys(this.lines).forEach(function (id) { self.chart.removePriceLine(self.lines[id]); });
    this.lines = {};
  };

  /* One line per alert of the instrument shown: dashed while armed, solid once fired. */
  Panel.prototype.drawLines = function () {
    var self = this;
    this.clearLines();
    this.shownAlerts().forEach(function (alert) {
      var fired = alert.status === "fired";
      self.lines[alert.alert_id] = self.chart.priceLine({
        price: Number(alert.threshold),
        color: fired ? LINE.fired : LINE.armed,
        lineWidth: 1,
        lineStyle: fired ? 0 : 2,
        axisLabelVisible: true,
        title: fired ? "fired " + (ARROWS[alert.condition] || "") : "alert " + (ARROWS[alert.condition] || ""),
      });
    });
  };

  // -- the `alerts` channel --------------------------------------------------------------

  Panel.prototype.subscribe = function () {
    if (!this.session.signedIn()) return;
    this.live = false;
    var message = this.seq !== null
      ? { op: "resume", channel: "alerts", seq: this.seq, epoch: this.epoch }
      : { op: "subscribe", channel: "alerts", snapshot: SNAPSHOT };
    this.subscribeId = this.chart.send(message);
  };

  Panel.prototype.receive = function (message) {
    var self = this;
    if (message.type === "error" && message.id !== undefined && message.id === this.subscribeId) {
      // not served now (no main API database, or it is down): a fresh subscribe later
      this.subscribeId = null;
      this.seq = null;
      this.say("alerts: " + message.message);
      setTimeout(function () { if (!self.live) self.subscribe(); }, RETRY_MS);
      return;
    }
    if (message.channel !== "alerts") return;
    switch (message.type) {
      case "snapshot":
        (message.alerts || []).forEach(function (fired) { self.remember(fired.fire_id); });
        this.seq = message.seq;
        if (message.epoch) this.epoch = message.epoch;
        this.live = true;
        this.say("");
        if (message.reset) this.load();  // what was missed is in the alerts' statuses
        break;
      case "alert":
        if (this.seq !== null && message.seq <= this.seq) return;  // seen already
        if (this.seq !== null && message.seq > this.seq + 1) {
          this.subscribe();  // a jump: resume from what we saw
          return;
        }
        this.seq = message.seq;
        this.fired(message.alert);
        break;
      case "error":
        if (message.id === null) this.subscribe();  // the channel was dropped: again
        break;
      default:
        break;
    }
  };

  Panel.prototype.remember = function (fireId) {
    if (this.seen[fireId]) return false;
    if (this.seenCount >= MAX_SEEN) { this.seen = {}; this.seenCount = 0; }
    this.seen[fireId] = true;
    this.seenCount += 1;
    return true;
  };

  /* A firing: a toast, and its line marked. */
  Panel.prototype.fired = function (fired) {
    if (!fired || !this.remember(fired.fire_id)) return;
    var alert = this.alerts[fired.alert_id];
    if (alert && alert.arming !== "rearm") {
      alert.status = "fired";
      this.drawLines();
      this.showAlerts();
    }
    var text = fired.instrument + " " + (WORDS[fired.condition] || fired.condition) + " " +
      fired.threshold + (fired.condition.indexOf("move") === 0 ? "%" : "") +
      ": " + fired.price + (fired.gap ? " (across a feed gap)" : "");
    this.toast(text);
  };

  Panel.prototype.toast = function (text) {
    var node = el("div", { class: "mdp-alerts-toast", title: "click to dismiss" },
                  [el("strong", {}, ["Alert"]), " " + text]);
    node.addEventListener("click", function () { node.remove(); });
    this.toasts.appendChild(node);
    this.toasted.push(text);
    if (this.toasted.length > MAX_SEEN) this.toasted.shift();
    while (this.toasts.children.length > MAX_TOASTS) this.toasts.removeChild(this.toasts.firstChild);
    setTimeout(function () { node.remove(); }, TOAST_MS);
  };

  function mount(target, chart, session) {
    var root = typeof target === "string" ? document.getElementById(target) : target;
    if (!root) throw new Error("MdpAlerts.mount: no element " + target);
    var panel = new Panel(root, chart, session);
    var handle = {
      watchlists: function () { return JSON.parse(JSON.stringify(panel.watchlists)); },
      alerts: function () {
        return Object.keys(panel.alerts).map(function (id) { return Object.assign({}, panel.alerts[id]); });
      },
      lines: function () {
        return Object.keys(panel.lines).map(function (id) {
          var options = panel.lines[id].options();
          return { alert_id: id, price: options.price, title: options.title, color: options.color };
        });
      },
      toasts: function () { return panel.toasted.slice(); },
      live: function () { return panel.live; },
      seq: function () { return panel.seq; },
      watchShown: function () { return panel.watchShown(); },
    };
    window.mdpAlerts = handle;
    return handle;
  }

  window.MdpAlerts = { mount: mount, version: "1" };
})();
