// The shell's browser-side steps (dashboard/callbacks/shell.py wires them): a filter change
// reaches the page's cards in the same tick, without a round trip to the server first. The
// server still checks every value: each card parses the state itself (dashboard/state.py), and
// the shell's server callback keeps the URL, the controls and the messages canonical.
(function () {
  // filter keys in their canonical order (dashboard/filters.py KEYS; the list keys first, in the
  // order of ids.LIST_CONTROLS); tests/test_shell_clientside.py checks both
  const LIST_KEYS = ["site", "bclc", "child_pugh", "etiology", "sex", "ecog"];
  const KEYS = LIST_KEYS.concat(["age_min", "age_max", "enrolled_from", "enrolled_to"]);
  const AGE_BOUNDS = [18, 100];

  // a query value as Python's urlencode(..., safe=",") writes it (space as +)
  function encode(value) {
    return encodeURIComponent(String(value)).replace(/%2C/gi, ",").replace(/%20/g, "+")
      .replace(/[!'()*~]/g, (c) => "%" + c.charCodeAt(0).toString(16).toUpperCase());
  }

  function params(search) {
    return new URLSearchParams((search || "").replace(/^\?/, ""));
  }

  function listItems(raw) {
    const seen = [];
    String(raw).split(",").map((x) => x.trim()).forEach((x) => {
      if (x && seen.indexOf(x) === -1) { seen.push(x); }
    });
    return seen;
  }

  function query(pairs) {
    return pairs.map(([k, v]) => k + "=" + (Array.isArray(v) ? v.map(encode).join(",") : encode(v))).join("&");
  }

  // the filter pairs a URL holds, in canonical order
  function pairsFromSearch(search) {
    const p = params(search);
    const out = [];
    KEYS.forEach((k) => {
      if (!p.has(k)) { return; }
      const v = LIST_KEYS.indexOf(k) >= 0 ? listItems(p.get(k)) : p.get(k).trim();
      if (v.length) { out.push([k, v]); }
    });
    return out;
  }

  // the filter pairs the controls hold; `chip`: a chip's id whose filter is removed
  function pairsFromControls(lists, age, start, end, chip) {
    const out = [];
    LIST_KEYS.forEach((k, i) => {
      let v = (lists[i] || []).map(String);
      if (chip && chip.key === k) { v = v.filter((x) => x !== String(chip.value)); }
      v = listItems(v.join(","));
      if (v.length) { out.push([k, v]); }
    });
    const drop = (k) => chip && chip.key === k;
    if (age && age[0] > AGE_BOUNDS[0] && !drop("age_min")) { out.push(["age_min", String(age[0])]); }
    if (age && age[1] < AGE_BOUNDS[1] && !drop("age_max")) { out.push(["age_max", String(age[1])]); }
    if (start && !drop("enrolled_from")) { out.push(["enrolled_from", String(start).slice(0, 10)]); }
    if (end && !drop("enrolled_to")) { out.push(["enrolled_to", String(end).slice(0, 10)]); }
    return out;
  }

  // the cut a URL names, when the data-cut list offers it (once the list is known): a link to a
  // cut that is not there, or not for this user, shows the latest, as the server's step says
  function cut(named, options) {
    if (!named) { return "latest"; }
    if (!options || !options.length) { return named; }
    return options.some((o) => o.value === named && !o.disabled) ? named : "latest";
  }

  // the controls' values that show `pairs` (no_update for one that already does); a value the
  // control cannot hold is the server step's to correct, with a message
  function controlsFor(pairs, lists, age, start, end) {
    const noUpdate = window.dash_clientside.no_update;
    const given = {};
    pairs.forEach(([k, v]) => { given[k] = v; });
    const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);
    const out = LIST_KEYS.map((k, i) => {
      const v = given[k] || [];
      return same(v, (lists[i] || []).map(String)) ? noUpdate : v;
    });
    const bound = (k, i) => (/^\d+$/.test(given[k] || "") ? Number(given[k]) : AGE_BOUNDS[i]);
    const range = [bound("age_min", 0), bound("age_max", 1)];
    out.push(same(range, age || AGE_BOUNDS) ? noUpdate : range);
    const day = (x) => (x ? String(x).slice(0, 10) : null);
    out.push(day(given.enrolled_from) === day(start) ? noUpdate : given.enrolled_from || null);
    out.push(day(given.enrolled_to) === day(end) ? noUpdate : given.enrolled_to || null);
    return out;
  }

  function triggers() {
    const ctx = window.dash_clientside.callback_context;
    return ((ctx && ctx.triggered) || []).filter((t) => t && t.prop_id && t.prop_id !== ".");
  }

  function chipOf(propId) {
    if (propId.indexOf('"filter-chip"') === -1) { return null; }
    try { return JSON.parse(propId.slice(0, propId.lastIndexOf("."))); } catch (e) { return null; }
  }

  window.dash_clientside = Object.assign({}, window.dash_clientside, {
    shell: {
      // The cards' state {snapshot, query}, from the URL (load, back, forward, the server's
      // canonical URL) or from the controls, a removed chip or "clear all" (a person's input);
      // then the URL when it brought filters the page did not show (the server checks it and sets
      // the controls), and the controls a chip or "clear all" changes.
      filterState: function () {
        const args = Array.prototype.slice.call(arguments);
        const n = LIST_KEYS.length;
        const search = args[0];
        const lists = args.slice(1, 1 + n);
        const [age, start, end, , clearClicks, current, cuts] = args.slice(1 + n);
        const noUpdate = window.dash_clientside.no_update;
        const unchanged = (first) => [first, noUpdate].concat(lists.map(() => noUpdate), [noUpdate, noUpdate, noUpdate]);
        const fired = triggers();
        const ids = fired.map((t) => t.prop_id);
        const fromUrl = !fired.length || ids.indexOf("url.search") >= 0;
        let pairs, controls = null;
        if (fromUrl) {
          pairs = pairsFromSearch(search);
          controls = controlsFor(pairs, lists, age, start, end);
        } else if (ids.indexOf("clear-all-filters.n_clicks") >= 0) {
          if (!clearClicks) { return unchanged(noUpdate); }
          pairs = [];
          // only the controls that hold a filter: one set to its own value is drawn again for nothing
          controls = lists.map((v) => (v && v.length ? [] : noUpdate));
          controls.push(age && (age[0] > AGE_BOUNDS[0] || age[1] < AGE_BOUNDS[1]) ? AGE_BOUNDS.slice() : noUpdate,
                        start ? null : noUpdate, end ? null : noUpdate);
        } else {
          const chips = fired.filter((t) => chipOf(t.prop_id));
          const clicked = chips.find((t) => t.value);
          if (chips.length === fired.length && !clicked) { return unchanged(noUpdate); }  // chips drawn, none clicked
          const chip = clicked ? chipOf(clicked.prop_id) : null;
          pairs = pairsFromControls(lists, age, start, end, chip);
          if (chip) {
            controls = LIST_KEYS.map((k, i) => k === chip.key ? (lists[i] || []).filter((x) => String(x) !== String(chip.value))
                                                              : noUpdate);
            const range = age || AGE_BOUNDS;
            controls.push(chip.key === "age_min" ? [AGE_BOUNDS[0], range[1]] :
                          chip.key === "age_max" ? [range[0], AGE_BOUNDS[1]] : noUpdate);
            controls.push(chip.key === "enrolled_from" ? null : noUpdate, chip.key === "enrolled_to" ? null : noUpdate);
          }
        }
        const state = {snapshot: cut(params(search).get("snapshot"), cuts), query: query(pairs)};
        const same = current && current.snapshot === state.snapshot && current.query === state.query;
        // a URL whose filters the page already shows (a page option, the server's own canonical
        // URL) needs no check; one on load, back or forward does
        // "load:" when the page has no state yet, "nav:" on back and forward (the server records those)
        const seen = fromUrl && (!same || !fired.length) ? (current ? "nav:" : "load:") + Date.now() : noUpdate;
        return [same ? noUpdate : state, seen].concat(controls || unchanged(noUpdate).slice(2));
      },

      // Page options (ids.page_option) keep their value in the URL: a control's change writes it
      // (a value equal to the page's default is left out, so a control echoing its initial value
      // adds no history entry); a URL change (back, forward) sets the controls from it.
      // `spec`: {defaults, allowed} of the page (page_option_spec in dashboard/callbacks/shell.py)
      pageOptions: function (search, values, spec) {
        const ctx = window.dash_clientside.callback_context;
        const noUpdate = window.dash_clientside.no_update;
        const keys = ctx.inputs_list[1].map((i) => i.id.key);
        const ids = triggers().map((t) => t.prop_id);
        const defaults = (spec && spec.defaults) || {};
        const allowed = (spec && spec.allowed) || {};
        const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);
        // a URL value the control can hold (a hand-edited link may hold anything)
        const fits = (key, text) => {
          const choices = allowed[key];
          if (choices === undefined) { return false; }
          if (choices === null) { return /^-?\d+(\.\d+)?$/.test(text); }
          if (choices === "text") { return text.length <= 64; }
          return text.split(",").filter(Boolean).every((x) => choices.indexOf(x) >= 0);
        };
        if (ids.indexOf("url.search") >= 0) {
          const p = params(search);
          return [noUpdate, keys.map((key, i) => {
            const value = values[i];
            if (!p.has(key) || !fits(key, p.get(key))) {
              return key in defaults && !same(defaults[key], value) ? defaults[key] : noUpdate;
            }
            const wanted = p.get(key);
            const now = Array.isArray(value) ? value.map(String).join(",") : String(value);
            if (wanted === now) { return noUpdate; }
            if (Array.isArray(value)) { return wanted.split(","); }
            if (typeof value === "number" && /^-?\d+$/.test(wanted)) { return Number(wanted); }
            return wanted;
          })];
        }
        if (!ids.length || !keys.length) { return [noUpdate, keys.map(() => noUpdate)]; }
        const options = {};
        keys.forEach((key, i) => {
          options[key] = key in defaults && same(values[i], defaults[key]) ? null : values[i];
        });
        const kept = [];
        params(search).forEach((v, k) => { if (!(k in options)) { kept.push([k, v]); } });
        keys.forEach((key) => {
          const v = options[key];
          if (!(v === null || v === undefined || v === false || v === "" || (Array.isArray(v) && !v.length))) {
            kept.push([key, Array.isArray(v) ? v.map(String) : String(v)]);
          }
        });
        const q = query(kept);
        const next = q ? "?" + q : "";
        return [next === (search || "") ? noUpdate : next, keys.map(() => noUpdate)];
      },

      // Navigation keeps the filters and the data cut (not the page options of this page).
      navHrefs: function (search, linkIds) {
        const p = params(search);
        const kept = [];
        p.forEach((v, k) => { if (KEYS.indexOf(k) >= 0 || k === "snapshot") { kept.push([k, v]); } });
        const q = query(kept);
        return linkIds.map((i) => i.page + (q ? "?" + q : ""));
      }
    }
  });
})();
