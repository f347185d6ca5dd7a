/*
 * mdp-chart.js: a live candlestick chart of the Ganntec market data platform.
 *
 * Embed it with a div and one call:
 *
 *   <div id="chart" style="height: 480px"></div>
 *   <script src="http://HOST:PORT/static/mdp-chart.js"></script>
 *   <script>MdpChart.mount("chart", { instrument: "BINANCE:BTCUSDT", interval: "1m" });</script>
 *
 * It reads /config.json from the server that served this script (the WebSocket gateway's
 * URL and the history API's base), loads TradingView's lightweight-charts from the same
 * server, draws the history (/udf/history, more on scroll-back), and applies live candles
 * from the gateway (docs/chart.md has the protocol), reconnecting with resume. Candles over a
 * feed gap (trades may be missing) are drawn muted, and the gateway's gap notices shown.
 * With a `session` (mdp-session.js) its access token goes with every request: history with
 * `Authorization: Bearer`, the WebSocket in an `auth` first frame; signing in or out reloads
 * the chart on the new plan.
 */
(function () {
  "use strict";

  var SCRIPT_URL = document.currentScript ? document.currentScript.src : window.location.href;
  var SERVER = new URL("..", SCRIPT_URL).href.replace(/\/$/, "");
  var LIBRARY_URL = SERVER + "/static/vendor/lightweight-charts.js";
  var PAGE_BARS = 300;
  var SCROLL_BACK_MARGIN = 20;
  var PING_EVERY_MS = 20000;
  var SILENCE_LIMIT_MS = 15000;  // the gateway is heard from at least every 10 s
  var WATCH_EVERY_MS = 2500;
  var RETRY_MS = [500, 1000, 2000, 4000, 8000, 15000];
  var DEFAULT_INTERVALS = ["1s", "1m", "5m", "15m", "1h", "4h", "1d"];
  // Candles above, volume in its own band below them: fractions of the pane's height.
  var CANDLE_MARGINS = { top: 0.08, bottom: 0.26 };
  var VOLUME_MARGINS = { top: 0.8, bottom: 0 };
  var UNIT_SECONDS = { s: 1, m: 60, h: 3600, d: 86400 };
  var COLORS = {
    up: "#26a69a", down: "#ef5350", volumeUp: "#1f5f58", volumeDown: "#6e2b2a",
    // a candle over a feed gap: muted, neither up nor down, since trades may be missing
    gap: "#a08f62", volumeGap: "#4a4130",
  };
  var GAP_LEGEND = "feed gap: data may be missing";
  var GAP_REASONS = { disconnected: "feed disconnected", sequence: "trades skipped" };
  var NOTICE_MS = 30000;
  var CLOSE_UNAUTHORIZED = 4401;  // the token was refused
  var CLOSE_REVOKED = 4403;       // its key, session or account was revoked
  var MAX_NOTICES = 3;
  var MAX_NOTICED = 200;

  var libraryPromise = null;

  function loadLibrary() {
    if (window.LightweightCharts) return Promise.resolve(window.LightweightCharts);
    if (libraryPromise) return libraryPromise;
    libraryPromise = new Promise(function (resolve, reject) {
      var tag = document.createElement("script");
      tag.src = LIBRARY_URL;
      tag.onload = function () {
        if (window.LightweightCharts) resolve(window.LightweightCharts);
        else reject(new Error("lightweight-charts did not load from " + LIBRARY_URL));
      };
      tag.onerror = function () {
        // The server answers 503 with what to run when `npm ci` was not run.
        fetch(LIBRARY_URL)
          .then(function (r) { return r.json(); })
          .then(function (p) { reject(new Error(p.detail || "chart library missing")); })
          .catch(function () { reject(new Error("cannot load " + LIBRARY_URL)); });
      };
      document.head.appendChild(tag);
    });
    return libraryPromise;
  }

  function intervalSeconds(label) {
    var match = /^(\d+)([smhd])$/.exec(label);
    if (!match) throw new Error("bad interval " + label);
    return Number(match[1]) * UNIT_SECONDS[match[2]];
  }

  function udfResolution(label) {
    var seconds = intervalSeconds(label);
    if (seconds % 86400 === 0) return seconds / 86400 + "D";
    if (seconds % 60 === 0) return String(seconds / 60);
    return seconds + "S";
  }

  /* An element with attributes and children (texts or nodes); also MdpChart.el. */
  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    (children || []).forEach(function (c) {
      node.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
    });
    return node;
  }

  function getJson(url, headers) {
    var sent = Object.assign({ Accept: "application/json" }, headers || {});
    return fetch(url, { headers: sent }).then(function (r) {
      return r.json().then(function (body) {
        if (!r.ok) {
          var error = new Error(body.detail || body.errmsg || r.status + " " + url);
          error.status = r.status;
          throw error;
        }
        return body;
      });
    });
  }

  /* The gateway's URL: "ws://{host}:8765/ws" is the gateway on the machine the page came
     from, "/ws" a path beside the page (behind the edge: the same origin, ws or wss). */
  function gatewayUrl(configured) {
    if (!configured) return configured;
    var page = new URL(SERVER);
    if (configured.charAt(0) === "/") {
      var scheme = page.protocol === "https:" ? "wss://" : "ws://";
      return scheme + page.host + configured;
    }
    return configured.replace("{host}", page.hostname);
  }

  /* A bar from a gateway CANDLE (decimal strings, open_time in epoch ms). A candle without
     the `gap` field (an older gateway) is taken as not flagged. */
  function barOfCandle(c) {
    return {
      time: Math.floor(c.open_time / 1000),
      open: Number(c.open),
      high: Number(c.high),
      low: Number(c.low),
      close: Number(c.close),
      volume: Number(c.volume),
      status: c.status,
      revision: c.revision,
      gap: c.gap === true,
    };
  }

  /* The candlestick series' point of a bar: a flagged one in the gap colour throughout. */
  function candlePoint(b) {
    var point = { time: b.time, open: b.open, high: b.high, low: b.low, close: b.close };
    if (b.gap) {
      point.color = COLORS.gap;
      point.borderColor = COLORS.gap;
      point.wickColor = COLORS.gap;
    }
    return point;
  }

  function volumePoint(b) {
    var color = b.gap ? COLORS.volumeGap : b.close >= b.open ? COLORS.volumeUp : COLORS.volumeDown;
    return { time: b.time, value: b.volume, color: color };
  }

  function utc(ms) {
    return new Date(ms).toISOString().slice(0, 19).replace("T", " ");
  }

  /* "2026-01-01 00:00:14 - 00:00:18 UTC": whole seconds, widened (start down, end up). */
  function span(startMs, endMs) {
    var from = utc(Math.floor(startMs / 1000) * 1000);
    var to = utc(Math.ceil(endMs / 1000) * 1000);
    if (to.slice(0, 10) === from.slice(0, 10)) to = to.slice(11);
    return from + " - " + to + " UTC";
  }

  /* Bars sorted by time, one per time: what both series are drawn from. */
  function Bars() {
    this.list = [];
  }
  Bars.prototype.replace = function (bars) {
    this.list = bars.slice().sort(function (a, b) { return a.time - b.time; });
  };
  Bars.prototype.prepend = function (older) {
    var first = this.list.length ? this.list[0].time : Infinity;
    var kept = older.filter(function (b) { return b.time < first; });
    this.list = kept.concat(this.list);
    return kept.length;
  };
  /* Drop the bars from `time` on (a reset snapshot replaces them). */
  Bars.prototype.cutFrom = function (time) {
    this.list = this.list.filter(function (b) { return b.time < time; });
  };
  /* Upsert one bar by time, keeping the higher revision (bars loaded over HTTP have none,
     so live ones replace them). Says where: "last", "append", "history" or "stale". */
  Bars.prototype.upsert = function (bar) {
    var list = this.list;
    var n = list.length;
    function newer(held) {
      return held.revision === undefined || bar.revision === undefined ||
        bar.revision >= held.revision;
    }
    if (!n || bar.time > list[n - 1].time) { list.push(bar); return "append"; }
    if (bar.time === list[n - 1].time) {
      if (!newer(list[n - 1])) return "stale";
      list[n - 1] = bar;
      return "last";
    }
    var lo = 0, hi = n - 1;
    while (lo <= hi) {
      var mid = (lo + hi) >> 1;
      if (list[mid].time === bar.time) {
        if (!newer(list[mid])) return "stale";
        list[mid] = bar;
        return "history";
      }
      if (list[mid].time < bar.time) lo = mid + 1; else hi = mid - 1;
    }
    list.splice(lo, 0, bar);
    return "history";
  };

  function Chart(container, options, config, library) {
    this.container = container;
    this.options = options;
    this.config = config;
    this.library = library;
    this.apiBase = (options.apiBase != null ? options.apiBase : config.api_base) || SERVER;
    this.wsUrl = gatewayUrl(options.wsUrl != null ? options.wsUrl : config.ws_url);
    this.session = options.session || null;
    this.authId = null;      // the id of the first `auth` frame, awaiting its answer
    this.renewId = null;     // the id of a renewing `auth` frame
    this.connects = 0;
    this.instrument = options.instrument || null;
    this.interval = options.interval || "1m";
    this.intervals = (options.intervals || config.intervals || DEFAULT_INTERVALS).slice();
    if (this.intervals.indexOf(this.interval) < 0) this.intervals.unshift(this.interval);
    this.bars = new Bars();
    this.state = "connecting";
    this.lastSeq = null;
    this.epoch = null;
    this.catchingUp = false;
    this.requestId = 0;
    this.socket = null;
    this.retries = 0;
    this.loadingOlder = false;
    this.exhausted = false;
    this.ready = false;
    this.generation = 0;
    this.updates = 0;
    this.closed = false;
    this.noticed = {};  // gap notices shown, by span and reason (a resume may repeat one)
    this.noticedCount = 0;
    this.hooks = { message: [], connected: [], select: [] };  // modules beside the chart
    this.build();
    var self = this;
    if (this.session) this.session.onChange(function (kind) { self.identityChanged(kind); });
  }

  /* The Authorization header of the session's access token (none while anonymous). */
  Chart.prototype.headers = function () {
    var token = this.session && this.session.token();
    return token ? { Authorization: "Bearer " + token } : {};
  };

  /* GET with the session's token; a 401 (the token expired, or its key was rotated) gets
     a fresh token and one more try. */
  Chart.prototype.getJson = function (url) {
    var self = this;
    return getJson(url, this.headers()).catch(function (error) {
      if (error.status !== 401 || !self.session || !self.session.signedIn()) throw error;
      return self.session.refresh().then(function () { return getJson(url, self.headers()); });
    });
  };

  /* Signed in or out: another plan, so the history and the live stream start afresh. A
     renewed token goes to the open connection in an `auth` frame (the gateway closes one
     whose token expired); without an open, authenticated connection the chart connects
     again with it and resumes. */
  Chart.prototype.identityChanged = function (kind) {
    if (this.closed || kind === "started") return;
    var open = this.socket && this.socket.readyState === WebSocket.OPEN;
    if (kind === "refreshed" && open && this.authId === null) {
      var token = this.session.token();
      if (token && this.send({ op: "auth", token: token })) {
        this.renewId = this.requestId;
        return;
      }
    }
    this.reconnect();
    if (kind !== "refreshed" && this.instrument) this.select(this.instrument, this.interval);
  };

  Chart.prototype.reconnect = function () {
    var socket = this.socket;
    this.socket = null;
    this.subscribed = false;
    this.authId = null;
    this.renewId = null;
    clearInterval(this.pinger);
    if (socket) socket.close();
    this.retries = 0;
    this.connect();
  };

  Chart.prototype.build = function () {
    var self = this;
    var root = this.container;
    root.classList.add("mdp-chart");
    this.toolbar = el("div", { class: "mdp-chart-toolbar" });
    this.instrumentSelect = el("select", { class: "mdp-chart-instrument", "aria-label": "instrument" });
    this.intervalSelect = el("select", { class: "mdp-chart-interval", "aria-label": "interval" });
    this.intervals.forEach(function (label) {
      self.intervalSelect.appendChild(el("option", { value: label }, [label]));
    });
    this.intervalSelect.value = this.interval;
    this.stateBadge = el("span", { class: "mdp-chart-state", "data-state": "connecting" }, ["connecting"]);
    this.message = el("span", { class: "mdp-chart-message" });
    this.toolbar.appendChild(this.instrumentSelect);
    this.toolbar.appendChild(this.intervalSelect);
    this.toolbar.appendChild(this.stateBadge);
    this.toolbar.appendChild(this.message);
    if (this.options.controls === false) this.toolbar.style.display = "none";
    this.canvasBox = el("div", { class: "mdp-chart-canvas" });
    root.appendChild(this.toolbar);
    root.appendChild(this.canvasBox);

    var LC = this.library;
    this.chart = LC.createChart(this.canvasBox, {
      autoSize: true,
      layout: { background: { color: "#0f1419" }, textColor: "#c7cdd4" },
      grid: { vertLines: { color: "#1c2430" }, horzLines: { color: "#1c2430" } },
      timeScale: { timeVisible: true, secondsVisible: false, borderColor: "#2a3441" },
      rightPriceScale: { borderColor: "#2a3441", scaleMargins: CANDLE_MARGINS },
      crosshair: { mode: 0 },
    });
    this.candles = this.chart.addSeries(LC.CandlestickSeries, {
      upColor: COLORS.up, downColor: COLORS.down, borderVisible: false,
      wickUpColor: COLORS.up, wickDownColor: COLORS.down,
    });
    // Volume on an overlay scale of its own, in the band below the candles; no label or
    // price line of its own on the price scale (it would sit among the prices).
    this.volumes = this.chart.addSeries(LC.HistogramSeries, {
      priceFormat: { type: "volume" }, priceScaleId: "volume", color: "#3d4b5c",
      lastValueVisible: false, priceLineVisible: false,
    });
    this.chart.priceScale("volume").applyOptions({ scaleMargins: VOLUME_MARGINS });
    // Over the canvas, top left: the gap legend (while a flagged bar is held) and notices.
    this.overlay = el("div", { class: "mdp-chart-overlay" });
    var swatch = el("span", { class: "mdp-chart-swatch" });
    swatch.style.background = COLORS.gap;
    this.legend = el("div", { class: "mdp-chart-legend", hidden: "" }, [swatch, GAP_LEGEND]);
    this.noticeBox = el("div", { class: "mdp-chart-notices", role: "status", "aria-live": "polite" });
    this.overlay.appendChild(this.legend);
    this.overlay.appendChild(this.noticeBox);
    this.canvasBox.appendChild(this.overlay);
    this.chart.timeScale().subscribeVisibleLogicalRangeChange(function (range) {
      if (range && range.from < SCROLL_BACK_MARGIN) self.loadOlder();
    });
    this.instrumentSelect.addEventListener("change", function () {
      self.select(self.instrumentSelect.value, self.interval);
    });
    this.intervalSelect.addEventListener("change", function () {
      self.select(self.instrument, self.intervalSelect.value);
    });
  };

  Chart.prototype.setState = function (state, detail) {
    this.state = state;
    this.stateBadge.textContent = state;
    this.stateBadge.setAttribute("data-state", state);
    if (detail !== undefined) this.say(detail);
  };

  Chart.prototype.say = function (text) {
    this.message.textContent = text || "";
  };

  /* Tell the modules beside the chart (mdp-alerts.js) what happened: "message" (every
     message of the gateway), "connected" (the connection may carry subscriptions: opened, and
     authenticated when signed in), "select" (another instrument or interval). */
  Chart.prototype.emit = function (kind, value) {
    this.hooks[kind].forEach(function (hook) {
      try { hook(value); } catch (error) { console.error(error); }
    });
  };

  /* Whether the connection is open and answered the session's `auth` frame (or needs none). */
  Chart.prototype.usable = function () {
    return !!this.socket && this.socket.readyState === WebSocket.OPEN && this.authId === null;
  };

  Chart.prototype.start = function () {
    var self = this;
    return this.getJson(this.apiBase + "/v1/instruments").then(function (body) {
      var names = body.instruments.map(function (i) { return i.instrument; });
      names.forEach(function (name) {
        self.instrumentSelect.appendChild(el("option", { value: name }, [name]));
      });
      if (!self.instrument) self.instrument = names[0] || null;
      if (!self.instrument) {
        self.setState("offline", "no instruments have data yet");
        return;
      }
      self.instrumentSelect.value = self.instrument;
      self.connect();
      return self.select(self.instrument, self.interval);
    });
  };

  /* Show another instrument or interval: history first, then live updates. */
  Chart.prototype.select = function (instrument, interval) {
    var self = this;
    var previous = { instrument: this.instrument, interval: this.interval };
    this.generation += 1;
    var generation = this.generation;
    if (this.subscribed) this.send({ op: "unsubscribe", channel: "candles",
      instrument: previous.instrument, interval: previous.interval });
    this.subscribed = false;
    this.instrument = instrument;
    this.interval = interval;
    this.intervalSelect.value = interval;
    this.chart.applyOptions({ timeScale: { secondsVisible: intervalSeconds(interval) < 60 } });
    this.lastSeq = null;
    this.epoch = null;
    this.exhausted = false;
    this.ready = false;  // live updates wait for the history, which they then amend
    this.bars.replace([]);
    this.redraw();
    if (instrument !== previous.instrument) this.clearNotices();
    var to = Math.floor(Date.now() / 1000) + intervalSeconds(interval);
    this.applyPriceFormat(instrument);
    this.emit("select", { instrument: instrument, interval: interval });
    return this.history(to).then(function (bars) {
      if (generation !== self.generation) return;
      self.bars.replace(bars);
      self.redraw();
      self.chart.timeScale().scrollToRealTime();
    }).catch(function (error) {
      self.say("history: " + error.message);
    }).then(function () {
      if (generation !== self.generation) return;
      self.ready = true;
      self.subscribe();
    });
  };

  /* Prices with as many decimals as the instrument's (UDF symbol info: pricescale). */
  Chart.prototype.applyPriceFormat = function (instrument) {
    var self = this;
    this.getJson(this.apiBase + "/udf/symbols?symbol=" + encodeURIComponent(instrument))
      .then(function (info) {
        if (instrument !== self.instrument || !info.pricescale) return;
        var precision = Math.max(0, Math.round(Math.log10(info.pricescale)));
        self.candles.applyOptions({
          priceFormat: { type: "price", precision: precision, minMove: 1 / info.pricescale },
        });
      })
      .catch(function () { /* the default format will do */ });
  };

  /* PAGE_BARS bars opening before `to` (unix seconds), oldest first. The gap flags come in an
     optional `gap` array (absent: none flagged). */
  Chart.prototype.history = function (to) {
    var url = this.apiBase + "/udf/history?symbol=" + encodeURIComponent(this.instrument) +
      "&resolution=" + encodeURIComponent(udfResolution(this.interval)) +
      "&to=" + to + "&countback=" + PAGE_BARS;
    return this.getJson(url).then(function (body) {
      if (body.s === "no_data") return [];
      var gaps = Array.isArray(body.gap) ? body.gap : [];
      return body.t.map(function (t, i) {
        return { time: t, open: body.o[i], high: body.h[i], low: body.l[i], close: body.c[i],
                 volume: body.v[i], gap: Boolean(gaps[i]) };
      });
    });
  };

  Chart.prototype.loadOlder = function () {
    var self = this;
    if (this.loadingOlder || this.exhausted || !this.bars.list.length) return;
    this.loadingOlder = true;
    var generation = this.generation;
    this.history(this.bars.list[0].time).then(function (older) {
      if (generation !== self.generation) return;
      if (!older.length) { self.exhausted = true; return; }
      if (self.bars.prepend(older)) self.redraw();
      else self.exhausted = true;
    }).catch(function (error) {
      self.say("history: " + error.message);
    }).then(function () {
      self.loadingOlder = false;
    });
  };

  Chart.prototype.redraw = function () {
    var list = this.bars.list;
    this.candles.setData(list.map(candlePoint));
    this.volumes.setData(list.map(volumePoint));
    this.showLegend(list.some(function (b) { return b.gap; }));
  };

  Chart.prototype.apply = function (bar) {
    var where = this.bars.upsert(bar);
    if (where === "stale") return;
    if (where === "history") {
      this.redraw();  // a revised bar behind the newest one
    } else {
      this.candles.update(candlePoint(bar));
      this.volumes.update(volumePoint(bar));
      if (bar.gap) this.showLegend(true);
    }
    this.updates += 1;
  };

  Chart.prototype.showLegend = function (shown) {
    if (shown) this.legend.removeAttribute("hidden");
    else this.legend.setAttribute("hidden", "");
  };

  /* A `gap` message: a short notice over the chart, gone after NOTICE_MS or on a click. */
  Chart.prototype.notice = function (message) {
    if (message.instrument !== this.instrument) return;
    if (!Number.isFinite(message.start) || !Number.isFinite(message.end)) return;  // malformed
    var key = message.start + "|" + message.end + "|" + message.reason;
    if (this.noticed[key]) return;
    if (this.noticedCount >= MAX_NOTICED) { this.noticed = {}; this.noticedCount = 0; }
    this.noticed[key] = true;
    this.noticedCount += 1;
    var reason = GAP_REASONS[message.reason] || String(message.reason || "unknown reason");
    var text = "Feed gap " + span(message.start, message.end) + ": " + reason +
      (message.detail ? " (" + message.detail + ")" : "") + "; trades may be missing";
    var node = el("div", { class: "mdp-chart-notice", title: "click to dismiss" }, [text]);
    node.addEventListener("click", function () { node.remove(); });
    this.noticeBox.appendChild(node);
    while (this.noticeBox.children.length > MAX_NOTICES) {
      this.noticeBox.removeChild(this.noticeBox.firstChild);
    }
    setTimeout(function () { node.remove(); }, NOTICE_MS);
  };

  Chart.prototype.clearNotices = function () {
    this.noticeBox.textContent = "";
    this.noticed = {};
    this.noticedCount = 0;
  };

  // -- the WebSocket gateway ---------------------------------------------------------------

  Chart.prototype.connect = function () {
    var self = this;
    if (!this.wsUrl) {
      this.setState("offline", "no live updates: the server has no gateway URL");
      return;
    }
    if (this.closed) return;
    this.setState(this.retries ? "reconnecting" : "connecting");
    this.connects += 1;
    var socket;
    try {
      socket = new WebSocket(this.wsUrl);
    } catch (error) {
      this.retry(error.message);
      return;
    }
    this.socket = socket;
    socket.onopen = function () {
      self.retries = 0;
      self.heard = Date.now();
      self.subscribed = false;
      self.authId = null;
      self.plan = null;
      if (self.session && self.session.token()) {
        self.sendAuth();  // subscribe once answered
      } else {
        self.subscribe();
        self.emit("connected");
      }
      self.pinger = setInterval(function () { self.keepAlive(); }, WATCH_EVERY_MS);
    };
    socket.onmessage = function (event) {
      self.heard = Date.now();
      var message;
      try { message = JSON.parse(event.data); } catch (e) { return; }
      self.receive(message);
    };
    socket.onclose = function (event) {
      clearInterval(self.pinger);
      if (self.socket !== socket) return;
      self.socket = null;
      self.subscribed = false;
      self.authId = null;
      if (self.session && self.session.signedIn() && event.code === CLOSE_UNAUTHORIZED) {
        // the token was refused (expired meanwhile): connect again with a fresh one
        self.session.refresh().then(function () {
          if (!self.socket) self.retry("token refused");  // else signing out reconnected
        });
      } else if (self.session && self.session.signedIn() && event.code === CLOSE_REVOKED) {
        self.session.signOut();  // the session was revoked: anonymous from here
      } else {
        self.retry("connection closed");
      }
    };
    socket.onerror = function () { /* onclose follows */ };
  };

  Chart.prototype.retry = function (why) {
    var self = this;
    if (this.closed) return;
    var delay = RETRY_MS[Math.min(this.retries, RETRY_MS.length - 1)];
    delay = delay * (0.75 + Math.random() * 0.5);
    this.retries += 1;
    this.setState("reconnecting", why + "; retrying in " + (delay / 1000).toFixed(1) + "s");
    setTimeout(function () { self.connect(); }, delay);
  };

  /* The session's token in the `auth` first frame (docs/auth.md); subscriptions wait for
     its answer. */
  Chart.prototype.sendAuth = function () {
    var token = this.session && this.session.token();
    if (token && this.send({ op: "auth", token: token })) this.authId = this.requestId;
  };

  Chart.prototype.keepAlive = function () {
    if (!this.socket || this.socket.readyState !== WebSocket.OPEN) return;
    var now = Date.now();
    if (now - this.heard > SILENCE_LIMIT_MS) {
      this.socket.close();  // silent too long: reconnect (onclose retries)
      return;
    }
    if (!this.lastPing || now - this.lastPing >= PING_EVERY_MS) {
      this.lastPing = now;
      this.send({ op: "ping" });
    }
  };

  Chart.prototype.send = function (message) {
    if (!this.socket || this.socket.readyState !== WebSocket.OPEN) return false;
    this.requestId += 1;
    message.id = this.requestId;
    this.socket.send(JSON.stringify(message));
    return true;
  };

  /* Subscribe (or, after a reconnect, resume from the last seq seen). */
  Chart.prototype.subscribe = function () {
    if (this.subscribed || !this.ready || !this.instrument || this.authId !== null) return;
    var base = { channel: "candles", instrument: this.instrument, interval: this.interval };
    var resuming = this.lastSeq !== null;
    var message = resuming
      ? Object.assign({ op: "resume", seq: this.lastSeq, epoch: this.epoch }, base)
      : Object.assign({ op: "subscribe", snapshot: PAGE_BARS }, base);
    this.subscribed = this.send(message);
    this.resumeId = resuming && this.subscribed ? message.id : null;
  };

  Chart.prototype.mine = function (message) {
    return message.instrument === this.instrument && message.interval === this.interval;
  };

  /* The gateway's messages (docs/protocol.md): bars are upserts by open time. */
  Chart.prototype.receive = function (message) {
    var self = this;
    this.emit("message", message);
    switch (message.type) {
      case "authenticated":
        if (message.id === this.renewId) this.renewId = null;  // renewed: same connection
        if (message.id !== this.authId) return;
        this.authId = null;
        this.plan = { name: message.plan, delay: message.delay };
        this.subscribe();
        this.emit("connected");
        break;
      case "subscribed":
        if (!this.mine(message)) return;
        if (message.epoch) this.epoch = message.epoch;
        this.setState("live", "");
        break;
      case "snapshot":
        if (!this.mine(message)) return;
        var bars = (message.candles || []).map(barOfCandle);
        if (message.reset && bars.length) {
          // What was live is void: keep the history before the snapshot, take the rest anew.
          this.bars.cutFrom(bars[0].time);
          bars.forEach(function (bar) { self.bars.upsert(bar); });
          this.redraw();
        } else {
          bars.forEach(function (bar) { self.apply(bar); });
        }
        if (message.epoch) this.epoch = message.epoch;
        this.lastSeq = message.seq;
        this.catchingUp = false;
        this.setState("live", "");
        break;
      case "candle":
        if (!this.mine(message)) return;
        if (this.lastSeq !== null && message.seq <= this.lastSeq) return;  // seen already
        if (this.lastSeq !== null && message.seq > this.lastSeq + 1 && !this.catchingUp) {
          // A jump without `conflated` before it: something was missed; resume.
          this.subscribed = false;
          this.subscribe();
          return;
        }
        this.catchingUp = this.catchingUp && message.seq !== this.lastSeq + 1;
        this.apply(barOfCandle(message.candle));
        this.lastSeq = message.seq;
        if (this.state !== "live") this.setState("live", "");
        break;
      case "conflated":
        if (!this.mine(message)) return;
        this.catchingUp = true;  // the numbers skip what was conflated
        break;
      case "gap":
        this.notice(message);  // not numbered: it does not touch lastSeq
        break;
      case "error":
        if (message.id !== undefined && message.id === this.renewId) {
          this.renewId = null;
          this.reconnect();  // a renewal not taken: connect again with the new token, resume
          break;
        }
        this.say("gateway: " + (message.field ? message.field + ": " : "") + message.message);
        if (message.id !== undefined && message.id === this.authId) {
          // not taken (a refused token is closed with 4401 next): go on as anonymous
          this.authId = null;
          this.subscribe();
          this.emit("connected");
        }
        if (message.id !== undefined && message.id === this.resumeId) {
          // The gateway cannot resume from our seq: start afresh with a snapshot.
          this.resumeId = null;
          this.lastSeq = null;
          this.subscribed = false;
          this.subscribe();
        }
        break;
      default:
        break;  // heartbeat, pong, unsubscribed, and types added later
    }
  };

  Chart.prototype.destroy = function () {
    this.closed = true;
    if (this.socket) this.socket.close();
    clearInterval(this.pinger);
    this.chart.remove();
  };

  /* What tests (and curious users) can inspect: window.mdpChart.data() etc. */
  function api(chart) {
    return {
      data: function () { return chart.candles.data().slice(); },
      bars: function () { return chart.bars.list.slice(); },
      notices: function () {
        return Array.prototype.map.call(chart.noticeBox.children, function (n) {
          return n.textContent;
        });
      },
      legendShown: function () { return !chart.legend.hasAttribute("hidden"); },
      intervals: function () { return chart.intervals.slice(); },
      /* Where the two series are drawn: the price scales' margins (fractions of the pane). */
      bands: function () {
        return {
          candles: chart.candles.priceScale().options().scaleMargins,
          volume: chart.volumes.priceScale().options().scaleMargins,
        };
      },
      state: function () { return chart.state; },
      plan: function () { return chart.plan || null; },
      connects: function () { return chart.connects; },
      lastSeq: function () { return chart.lastSeq; },
      updates: function () { return chart.updates; },
      instrument: function () { return chart.instrument; },
      interval: function () { return chart.interval; },
      select: function (instrument, interval) { return chart.select(instrument, interval); },
      loadOlder: function () { return chart.loadOlder(); },
      scrollBack: function (bars) { chart.chart.timeScale().scrollToPosition(-bars, false); },
      destroy: function () { chart.destroy(); },
      chart: chart.chart,
      // -- for modules beside the chart (mdp-alerts.js) --
      /* Send a message to the gateway; its id, or null when the connection cannot carry it. */
      send: function (message) { return chart.usable() && chart.send(message) ? message.id : null; },
      onMessage: function (hook) { chart.hooks.message.push(hook); },
      /* Called now when the connection is usable, and again after every reconnect. */
      onConnected: function (hook) {
        chart.hooks.connected.push(hook);
        if (chart.usable()) hook();
      },
      onSelect: function (hook) { chart.hooks.select.push(hook); },
      /* A click on the candles' pane: its price (the candles' scale) and bar time. */
      onClick: function (hook) {
        chart.chart.subscribeClick(function (param) {
          if (!param || !param.point) return;
          var price = chart.candles.coordinateToPrice(param.point.y);
          if (price === null || !Number.isFinite(price)) return;
          hook({ price: price, time: param.time, x: param.point.x, y: param.point.y });
        });
      },
      /* A horizontal line at a price on the candles (lightweight-charts' price line). */
      priceLine: function (options) { return chart.candles.createPriceLine(options); },
      removePriceLine: function (line) { chart.candles.removePriceLine(line); },
      priceToY: function (price) { return chart.candles.priceToCoordinate(price); },
      /* The decimals the instrument's prices are shown with. */
      precision: function () {
        var format = chart.candles.options().priceFormat;
        return format && Number.isFinite(format.precision) ? format.precision : 2;
      },
      lastClose: function () {
        var list = chart.bars.list;
        return list.length ? list[list.length - 1].close : null;
      },
      session: function () { return chart.session; },
      apiBase: function () { return chart.apiBase; },
      canvas: function () { return chart.canvasBox; },
    };
  }

  function mount(target, options) {
    options = options || {};
    var container = typeof target === "string" ? document.getElementById(target) : target;
    if (!container) throw new Error("MdpChart.mount: no element " + target);
    var configured = options.config
      ? Promise.resolve(options.config)
      : getJson(SERVER + "/config.json").catch(function () { return {}; });
    return Promise.all([configured, loadLibrary()]).then(function (loaded) {
      var chart = new Chart(container, options, loaded[0], loaded[1]);
      var handle = api(chart);
      MdpChart.instances.push(handle);
      window.mdpChart = handle;
      return chart.start().then(function () { return handle; });
    }).catch(function (error) {
      container.classList.add("mdp-chart", "mdp-chart-failed");
      container.appendChild(el("div", { class: "mdp-chart-error" }, [error.message]));
      window.mdpChartError = error.message;
      throw error;
    });
  }

  var MdpChart = { mount: mount, instances: [], version: "1", colors: COLORS, el: el };
  window.MdpChart = MdpChart;
})();
