/* Masthead campaigns: the per-reader half of the campaign rules, decided in this browser.
 *
 * The server renders every campaign eligible for the page (same HTML for every reader); this
 * script picks what this reader sees from their own localStorage: a sticky random variant,
 * "Remind me later" and close snoozes, frequency caps, "not on the first N articles", and no
 * asks for a while after contributing here. It stores only dates, counts and variant numbers,
 * never anything identifying, and reports aggregate events to the site's own counter endpoint.
 * Without JavaScript the first campaign's first variant simply shows.
 */
(function () {
  "use strict";
  var KEY = "masthead:campaigns", DAY = 864e5, doc = document, queue = [];
  var root = doc.getElementById("masthead-campaigns");
  var SYMBOLS = { USD: "$", EUR: "€", GBP: "£" };

  function each(list, fn) { Array.prototype.forEach.call(list, fn); }
  function num(v) { var n = parseInt(v, 10); return n > 0 ? n : 0; }
  function obj(x) { return x && typeof x === "object" && !Array.isArray(x) ? x : {}; }
  // This browser's state, with anything malformed (an old version, a hand edit) set right.
  function load() {
    var s = {};
    try { s = obj(JSON.parse(localStorage.getItem(KEY))); } catch (e) { /* unreadable or blocked */ }
    s.v = obj(s.v); s.h = obj(s.h); s.n = obj(s.n);
    if (!Array.isArray(s.a)) s.a = [];
    s.c = num(s.c);
    return s;
  }
  function save(s) { try { localStorage.setItem(KEY, JSON.stringify(s)); } catch (e) { /* full or blocked */ } }

  function rules(el) {
    var d = el.dataset;
    return {
      id: d.campaign, placement: d.placement, audience: d.audience, snooze: num(d.snoozeDays) || 7,
      close: num(d.closeDays) || 3, day: num(d.day), week: num(d.week), skip: num(d.skip), ends: num(d.ends)
    };
  }
  function since(times, from) { return (times || []).filter(function (t) { return t > from; }).length; }

  // The rules for one campaign r, given this browser's state st, at time now (ms).
  function eligible(r, st, now) {
    if (r.ends && now >= r.ends) return false;
    if (r.audience === "non_supporters" && (st.sup || 0) > now) return false;
    if (r.audience === "non_subscribers" && (st.sub || 0) > now) return false;
    if (((st.h || {})[r.id] || 0) > now) return false;
    if (r.skip && (st.c || 0) <= r.skip) return false;
    var views = (st.n || {})[r.id];
    if (r.day && since(views, now - DAY) >= r.day) return false;
    if (r.week && since(views, now - 7 * DAY) >= r.week) return false;
    return true;
  }

  // A random variant, weighted, kept for this browser from then on.
  function pick(id, variants, st) {
    var i, total = 0, chosen = (st.v = st.v || {})[id];
    for (i = 0; i < variants.length; i++) if (variants[i].dataset.variant === chosen) return variants[i];
    for (i = 0; i < variants.length; i++) total += num(variants[i].dataset.weight) || 1;
    var r = Math.random() * total;
    for (i = 0; i < variants.length - 1; i++) {
      r -= num(variants[i].dataset.weight) || 1;
      if (r < 0) break;
    }
    st.v[id] = variants[i].dataset.variant;
    return variants[i];
  }

  function event(el, variant, type) {
    queue.push({ campaign: num(el.dataset.campaign), variant: num(variant.dataset.variant), event: type });
  }
  function send() {
    if (!queue.length || !root || !root.dataset.events) return; // none on a static copy
    var url = root.dataset.events, body = JSON.stringify({ events: queue.splice(0, 50) });
    if (!(navigator.sendBeacon && navigator.sendBeacon(url, body)) && window.fetch) {
      fetch(url, { method: "POST", body: body, keepalive: true, credentials: "omit" }).catch(function () {});
    }
  }

  function dismiss(el, variant, days) {
    var st = load();
    (st.h = st.h || {})[el.dataset.campaign] = Date.now() + days * DAY;
    save(st);
    if (el.open && el.close) el.close();
    el.hidden = true;
    // Keep keyboard and screen-reader users oriented: say what happened where the appeal was.
    var note = el.dataset.placement === "appeal" &&
      el.parentNode.querySelector('.appeal-snoozed[data-snoozed="' + el.dataset.campaign + '"]');
    if (note) { note.hidden = false; note.focus(); }
    event(el, variant, "dismiss");
    send();
  }

  // money: {currency: [exponent, symbol]} from the form's data-money (the server's own
  // formats); without it, two decimals and SYMBOLS.
  function fmt(minor, currency, money) {
    var m = money[currency] || [2, SYMBOLS[currency]], unit = Math.pow(10, m[0]);
    var text = (minor / unit).toLocaleString("en", { minimumFractionDigits: minor % unit ? m[0] : 0 });
    return m[1] ? m[1] + text : text + " " + currency;
  }

  // One key per page view and form: a double click is one checkout (contributions.views).
  function once(form) {
    var k = form.elements.submission, a = new Uint8Array(16);
    if (!k || k.value || !window.crypto) return;
    crypto.getRandomValues(a);
    k.value = Array.prototype.map.call(a, function (b) { return (b + 256).toString(16).slice(1); }).join("");
  }

  // The appeal form: amounts follow the chosen frequency and currency; "Other" follows typing.
  function amounts(form) {
    var data, box = form.querySelector("[data-amounts]"), custom = form.elements.custom_amount;
    var money = {};
    try { data = JSON.parse(form.dataset.presets); money = JSON.parse(form.dataset.money || "{}"); } catch (e) { return; }
    if (!box || !custom) return;
    var other = box.querySelector("[data-other]");
    function redraw() {
      var f = form.querySelector("[name=frequency]:checked"), cur = form.elements.currency.value;
      var list = ((data[cur] || {})[f && f.value]) || [];
      each(box.querySelectorAll("input:not([data-other])"), function (i) { box.removeChild(i.parentNode); });
      list.forEach(function (minor, k) {
        var label = doc.createElement("label"), input = doc.createElement("input"), span = doc.createElement("span");
        input.type = "radio"; input.name = "amount"; input.value = minor;
        input.checked = !custom.value && k === Math.min(1, list.length - 1);
        span.textContent = fmt(minor, cur, money);
        label.className = "segment";
        label.append(input, span);
        box.insertBefore(label, other.parentNode);
      });
    }
    form.addEventListener("change", function (e) {
      var name = e.target.name;
      if (name === "frequency" || name === "currency") redraw();
      if (name === "amount" && e.target.value) custom.value = "";
      if (name === "amount" && !e.target.value) custom.focus();
    });
    custom.addEventListener("input", function () { if (custom.value) other.checked = true; });
  }

  function show(el, st, now) {
    var r = rules(el), variants = el.querySelectorAll("[data-variant]"), v = pick(r.id, variants, st);
    each(variants, function (x) { x.hidden = x !== v; });
    el.hidden = false;
    ((st.n = st.n || {})[r.id] = st.n[r.id] || []).push(now);
    event(el, v, "impression");
    each(el.querySelectorAll("[data-js-only], [data-close]"), function (x) { x.hidden = false; });
    each(el.querySelectorAll("[data-snooze]"), function (b) {
      b.addEventListener("click", function () { dismiss(el, v, r.snooze); });
    });
    each(el.querySelectorAll("[data-close]"), function (b) {
      b.addEventListener("click", function () { dismiss(el, v, r.close); });
    });
    each(v.querySelectorAll("a[data-cta]"), function (a) {
      a.addEventListener("click", function () { event(el, v, "click"); send(); });
    });
    each(v.querySelectorAll("form"), function (form) {
      amounts(form);
      form.addEventListener("submit", function () { once(form); event(el, v, "click"); send(); });
    });
    if (r.placement === "overlay" && el.showModal) {
      var heading = v.querySelector("h2");
      if (heading) el.setAttribute("aria-labelledby", heading.id);
      el.addEventListener("cancel", function (e) { e.preventDefault(); dismiss(el, v, r.close); });
      el.showModal();
    }
  }

  function run() {
    var st = load(), now = Date.now(), id, groups = {}, placement;
    // Forget what no rule needs any more: views older than a week, expired snoozes.
    for (id in st.n) {
      st.n[id] = Array.isArray(st.n[id]) ? st.n[id].filter(function (t) { return t > now - 7 * DAY; }) : [];
      if (!st.n[id].length) delete st.n[id];
    }
    for (id in st.h) if (!(st.h[id] > now)) delete st.h[id];

    var gave = doc.getElementById("masthead-contributed");
    if (gave && root) {
      var days = num(root.getAttribute("data-supporter-" + gave.dataset.frequency)) || num(root.dataset.supporterOnce);
      st.sup = Math.max(st.sup || 0, now + days * DAY);
    }
    if (doc.getElementById("masthead-subscribed")) st.sub = now + (num(root && root.dataset.subscriber) || 365) * DAY;

    var article = doc.querySelector("[data-article]");
    if (article) {
      if (st.a.indexOf(article.dataset.article) < 0) {
        st.c += 1;
        st.a.push(article.dataset.article);
        if (st.a.length > 50) st.a.shift();
      }
    }

    each(doc.querySelectorAll("[data-campaign]"), function (el) {
      (groups[el.dataset.placement] = groups[el.dataset.placement] || []).push(el);
    });
    for (placement in groups) {
      var winner = null;
      groups[placement].forEach(function (el) {
        if (!winner && eligible(rules(el), st, now)) winner = el;
        else el.hidden = true;
      });
      if (winner) show(winner, st, now);
      else if (placement === "banner" && (st.sup || 0) > now) {
        each(doc.querySelectorAll(".support-banner-thanks"), function (x) { x.hidden = false; });
      }
    }
    save(st);
    send();
    // Back from the checkout with an amount it refused (#c1v2-error-minimum-usd): the
    // message shows by itself (CSS :target); move the keyboard focus to it too.
    var refused = location.hash.length > 1 && doc.getElementById(location.hash.slice(1));
    if (refused && refused.classList.contains("appeal-error")) refused.focus();
  }

  window.mastheadCampaigns = { eligible: eligible, load: load };
  if (doc.readyState === "loading") doc.addEventListener("DOMContentLoaded", run);
  else run();
})();
