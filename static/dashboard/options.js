/* Export options that need a switch (exports/pipeline/options.py: Option.requires) on the
 * converter and schedule forms. No build step, no dependencies (htmx's onLoad when present).
 *
 * A control marked data-requires="auto_convert" (form field names, space-separated) is
 * disabled, so the browser does not send it, while one of those boxes is unticked or disabled
 * itself: "Write libvirt domain" needs "Auto-convert", its disk bus and network map need it.
 * Without this script the server reads the form the same way (dashboard.forms.option_values).
 *
 * A box marked data-default-for="qcow2 raw" data-default-from="target_format" is ticked when
 * one of those values is chosen there and unticked for the others, until it is ticked or
 * unticked by hand (or the page came back showing another choice than its default).
 */
(function () {
  "use strict";

  function controls(form, name) {
    return [...form.querySelectorAll(`input[name="${CSS.escape(name)}"]`)];
  }

  function isOn(form, name) {
    return controls(form, name).some((control) => control.checked && !control.disabled);
  }

  // Settled until nothing changes: a switch may itself need another (libvirt needs convert).
  function settle(form) {
    const dependents = [...form.querySelectorAll("[data-requires]")];
    for (let pass = 0; pass <= dependents.length; pass += 1) {
      let changed = false;
      dependents.forEach((control) => {
        const needed = control.dataset.requires.split(" ").filter(Boolean);
        const disabled = !needed.every((name) => isOn(form, name));
        if (control.disabled !== disabled) {
          control.disabled = disabled;
          changed = true;
        }
      });
      if (!changed) return;
    }
  }

  function chosenValue(form, name) {
    const chosen = controls(form, name).find((control) => control.checked);
    return chosen ? chosen.value : null;
  }

  function defaultOf(box) {
    const chosen = chosenValue(box.form, box.dataset.defaultFrom);
    return chosen === null ? null : box.dataset.defaultFor.split(" ").includes(chosen);
  }

  function followDefaults(form) {
    form.querySelectorAll("[data-default-from]").forEach((box) => {
      const wanted = defaultOf(box);
      if (!box.dataset.touched && wanted !== null) box.checked = wanted;
    });
  }

  function prepare(form) {
    // A form shown again (refused, or after a choice) keeps what it shows: a box that differs
    // from its default was set by hand.
    form.querySelectorAll("[data-default-from]").forEach((box) => {
      const wanted = defaultOf(box);
      if (wanted !== null && wanted !== box.checked) box.dataset.touched = "true";
    });
    settle(form);
  }

  function scan(root) {
    const scope = root && root.querySelectorAll ? root : document;
    const forms = new Set(
      [...scope.querySelectorAll("[data-requires], [data-default-from]")].map((control) => control.form)
    );
    forms.forEach((form) => form && prepare(form));
  }

  document.addEventListener("change", (event) => {
    const control = event.target;
    const form = control.form;
    if (!form || !form.querySelector("[data-requires], [data-default-from]")) return;
    if (control.matches("[data-default-from]")) control.dataset.touched = "true";
    followDefaults(form);
    settle(form);
  });

  document.addEventListener("DOMContentLoaded", () => {
    if (window.htmx) htmx.onLoad(scan);
    else scan(document);
  });
})();
