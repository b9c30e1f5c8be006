// Accessibility repairs of Dash 4's own controls, applied whenever the DOM changes (dashboard/app.py
// layout; tests/test_browser_a11y.py runs axe-core on every page):
// - dcc.Dropdown puts its Tab stop on an input marked aria-hidden (focusable content hidden from
//   screen readers) that passes focus on to its button, and names the button by the value only
//   ("All, button"): the button becomes the Tab stop, named by the filter's label and the value;
// - dcc.DatePickerRange puts button attributes on a plain div and aria-label on a link without href:
//   the div loses them (the inputs inside keep their labels), the clear link becomes a button.
(function () {
  function setAttr(el, name, value) {
    if (el.getAttribute(name) !== value) { el.setAttribute(name, value); }
  }

  function dropdowns() {
    document.querySelectorAll(".dash-dropdown-wrapper").forEach(function (wrapper) {
      const target = wrapper.querySelector(".dash-dropdown-focus-target");
      const button = wrapper.querySelector("button.dash-dropdown");
      if (!target || !button || !button.id) { return; }
      // the control's <label for>, else the label text beside it (a page option: "Group by")
      const label = document.querySelector('label[for="' + CSS.escape(button.id) + '"]') ||
        (wrapper.parentElement && wrapper.parentElement.querySelector(":scope > .filter-label"));
      if (label && !label.id) { label.id = button.id + "-label"; }
      const value = document.getElementById(button.id + "-value");
      const names = [label && label.id, value && value.id].filter(Boolean);
      // the hidden input only relays Tab to the button: the button itself takes focus instead
      setAttr(target, "tabindex", "-1");
      setAttr(button, "tabindex", "0");
      if (names.length) { setAttr(button, "aria-labelledby", names.join(" ")); }
    });
  }

  function datePickers() {
    document.querySelectorAll(".dash-datepicker-input-wrapper").forEach(function (wrapper) {
      ["aria-expanded", "aria-haspopup", "aria-labelledby", "aria-disabled", "type"].forEach(function (name) {
        if (wrapper.hasAttribute(name)) { wrapper.removeAttribute(name); }
      });
    });
    document.querySelectorAll("a.dash-datepicker-clear").forEach(function (link) {
      setAttr(link, "role", "button");
      setAttr(link, "tabindex", "0");
    });
  }

  // a scrolling table box must take keyboard focus, or its rows below the fold cannot be reached
  function scrollBoxes() {
    document.querySelectorAll('[style*="overflow-y: auto"], [style*="overflow: auto"]').forEach(function (box) {
      if (!box.hasAttribute("tabindex")) { box.setAttribute("tabindex", "0"); }
      if (!box.hasAttribute("role")) { box.setAttribute("role", "region"); }
      if (!box.hasAttribute("aria-label")) { box.setAttribute("aria-label", "Scrollable table"); }
    });
  }

  let queued = false;
  function repair() {
    queued = false;
    dropdowns();
    datePickers();
    scrollBoxes();
  }
  function schedule() {
    if (!queued) { queued = true; window.requestAnimationFrame(repair); }
  }
  function start() {
    new MutationObserver(schedule).observe(document.body, {
      childList: true, subtree: true, attributes: true, attributeFilter: ["aria-expanded", "aria-hidden"]});
    schedule();
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", start); } else { start(); }
})();

// The filter panel's "Hide filters" / "Show filters" button (dashboard/app.py banner): the choice is
// kept in this browser (localStorage) and the figures are told the width changed.
(function () {
  const KEY = "registry.filtersHidden";
  function apply(hidden) {
    document.body.classList.toggle("filters-hidden", hidden);
    const button = document.getElementById("filter-toggle");
    if (button) { button.setAttribute("aria-expanded", hidden ? "false" : "true"); }
  }
  function stored() {
    try { return window.localStorage.getItem(KEY) === "1"; } catch (e) { return false; }
  }
  document.addEventListener("click", function (event) {
    const button = event.target.closest && event.target.closest("#filter-toggle");
    if (!button) { return; }
    const hidden = !document.body.classList.contains("filters-hidden");
    try { window.localStorage.setItem(KEY, hidden ? "1" : "0"); } catch (e) { /* private mode: not kept */ }
    apply(hidden);
    window.dispatchEvent(new Event("resize"));
  });
  function start() {
    apply(stored());
    // the button is drawn by Dash after this script runs: set its state once it exists
    new MutationObserver(function (records, observer) {
      if (document.getElementById("filter-toggle")) { apply(document.body.classList.contains("filters-hidden")); observer.disconnect(); }
    }).observe(document.body, {childList: true, subtree: true});
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", start); } else { start(); }
})();
