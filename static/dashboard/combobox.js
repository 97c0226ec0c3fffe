/* The VM-path typeahead: WAI-ARIA's "combobox with listbox popup" pattern over the options htmx
   swaps into the listbox (dashboard/partials/vm_path_field.html). ArrowDown/ArrowUp move the
   active option (aria-activedescendant; focus stays in the text field), Enter picks it, Escape
   closes, a click picks too. Picking sets the path and fires "change", which the converter's
   preflight panel listens for. */
(function () {
  "use strict";

  function listboxOf(input) {
    return document.getElementById(input.getAttribute("aria-controls"));
  }

  function optionsOf(listbox) {
    return Array.from(listbox.querySelectorAll('[role="option"]'));
  }

  function activeIndex(input, options) {
    var id = input.getAttribute("aria-activedescendant");
    return options.findIndex(function (option) { return option.id === id; });
  }

  function setOpen(input, open) {
    var listbox = listboxOf(input);
    if (!listbox) return;
    listbox.hidden = !open;
    input.setAttribute("aria-expanded", open ? "true" : "false");
    if (!open) {
      input.removeAttribute("aria-activedescendant");
      optionsOf(listbox).forEach(function (option) { option.setAttribute("aria-selected", "false"); });
    }
  }

  function activate(input, index) {
    var options = optionsOf(listboxOf(input));
    options.forEach(function (option, i) { option.setAttribute("aria-selected", i === index ? "true" : "false"); });
    if (index >= 0 && options[index]) {
      input.setAttribute("aria-activedescendant", options[index].id);
      options[index].scrollIntoView({ block: "nearest" });
    } else {
      input.removeAttribute("aria-activedescendant");
    }
  }

  function pick(input, option) {
    input.value = option.dataset.value;
    setOpen(input, false);
    // Not "input": that would ask for suggestions again. "change" is what a typed value fires too.
    input.dispatchEvent(new Event("change", { bubbles: true }));
  }

  document.addEventListener("keydown", function (event) {
    var input = event.target;
    if (!(input instanceof HTMLInputElement) || !input.hasAttribute("data-combobox")) return;
    var listbox = listboxOf(input);
    if (!listbox) return;
    var options = optionsOf(listbox);
    var open = input.getAttribute("aria-expanded") === "true";
    var index = activeIndex(input, options);
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      if (!options.length) return;
      event.preventDefault();
      if (!open) setOpen(input, true);
      var step = event.key === "ArrowDown" ? 1 : -1;
      var next = index < 0 ? (step > 0 ? 0 : options.length - 1) : (index + step + options.length) % options.length;
      activate(input, next);
    } else if (event.key === "Enter") {
      if (open && index >= 0) {
        event.preventDefault(); // picks; does not submit the form
        pick(input, options[index]);
      }
    } else if (event.key === "Escape") {
      if (open) {
        event.preventDefault();
        setOpen(input, false);
      }
    }
  });

  // A press on an option must not blur the field first (the list would close under the pointer).
  document.addEventListener("mousedown", function (event) {
    if (event.target.closest && event.target.closest('[role="listbox"] [role="option"]')) event.preventDefault();
  });

  document.addEventListener("click", function (event) {
    var option = event.target.closest && event.target.closest('[role="listbox"] [role="option"]');
    if (!option) return;
    var input = document.querySelector('[data-combobox][aria-controls="' + option.parentElement.id + '"]');
    if (input) pick(input, option);
  });

  document.addEventListener("focusout", function (event) {
    var input = event.target;
    if (input instanceof HTMLInputElement && input.hasAttribute("data-combobox")) setOpen(input, false);
  });

  // New suggestions arrived: number them, open the list if the field still has focus.
  document.addEventListener("htmx:afterSwap", function (event) {
    var listbox = event.detail.target;
    if (!listbox || listbox.getAttribute("role") !== "listbox") return;
    var input = document.querySelector('[data-combobox][aria-controls="' + listbox.id + '"]');
    if (!input) return;
    optionsOf(listbox).forEach(function (option, i) { option.id = listbox.id + "-" + i; });
    input.removeAttribute("aria-activedescendant");
    setOpen(input, document.activeElement === input && listbox.children.length > 0);
  });
})();
