/* The VM-path typeahead: WAI-ARIA's "combobox with listbox popup" pattern over the options htmx
   swaps into the listbox (dashboard/partials/vm_path_field.html). ArrowDown/ArrowUp move the
   active option (aria-activedescendant; focus stays in the text field), Enter picks it, Escape
   closes, a click picks too. Picking sets the path and fires "change", which the converter's
   preflight panel listens for.

   The options shown are always those of the text in the field: typing empties the list (and
   Enter waits) until the list for the new text arrives; a list asked for other text than the
   field holds now (a late answer) is dropped, and after a pick no answer reopens the list until
   the next keystroke. What is not an option (no match, "N match", an error) is said in the
   field's status line (a live region outside the listbox), never as an item of the listbox. */
(function () {
  "use strict";

  function listboxOf(input) {
    return document.getElementById(input.getAttribute("aria-controls"));
  }

  function statusOf(input) {
    return document.getElementById(input.getAttribute("data-combobox-status"));
  }

  function inputOf(listbox) {
    return document.querySelector('[data-combobox][aria-controls="' + listbox.id + '"]');
  }

  function optionsOf(listbox) {
    return Array.from(listbox.querySelectorAll('[role="option"]'));
  }

  function activeIndex(input, options) {
    var id = input.getAttribute("aria-activedescendant");
    return options.findIndex(function (option) { return option.id === id; });
  }

  // The status line says ``what``: text, or the nodes of an answer's status (names in <bdi>).
  function say(input, what) {
    var status = statusOf(input);
    if (!status) return;
    if (typeof what === "string") {
      if (status.textContent !== what) status.textContent = what;
    } else {
      status.replaceChildren(what);
    }
  }

  function setOpen(input, open) {
    var listbox = listboxOf(input);
    if (!listbox) return;
    open = open && optionsOf(listbox).length > 0; // never "expanded" over an empty list
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
    input.dataset.picked = "true"; // until the next keystroke, no answer reopens the list
    setOpen(input, false);
    say(input, "");
    // Not "input": that would ask for suggestions again. "change" is what a typed value fires too.
    input.dispatchEvent(new Event("change", { bubbles: true }));
  }

  // The text a suggestions answer was asked for (htmx sends it as ?vm_path=).
  function askedFor(xhr, input) {
    try {
      return new URL(xhr.responseURL, document.baseURI).searchParams.get(input.name);
    } catch (error) {
      return null;
    }
  }

  // Whether an answer is for the field as it is now: same text, no pick since.
  function current(input, xhr) {
    return !input.dataset.picked && askedFor(xhr, input) === input.value;
  }

  // The answer's one-line status (<template data-status> after the options), taken out of the
  // listbox: its nodes (the server escaped them), or "" when it has none.
  function statusText(root) {
    var template = root.querySelector("template[data-status]");
    if (!template) return "";
    template.remove();
    return document.importNode(template.content, true);
  }

  // Typing makes the options shown stale: gone (and Enter held) until the new text's list comes.
  document.addEventListener("input", function (event) {
    var input = event.target;
    if (!(input instanceof HTMLInputElement) || !input.hasAttribute("data-combobox")) return;
    var listbox = listboxOf(input);
    if (!listbox) return;
    delete input.dataset.picked;
    input.dataset.pending = "true";
    setOpen(input, false);
    listbox.replaceChildren();
    say(input, "");
  });

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
      } else if (input.dataset.pending) {
        event.preventDefault(); // half-typed: neither a stale pick nor a submit; the list is coming
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
    var input = inputOf(option.parentElement);
    if (input) pick(input, option);
  });

  document.addEventListener("focusout", function (event) {
    var input = event.target;
    if (input instanceof HTMLInputElement && input.hasAttribute("data-combobox")) setOpen(input, false);
  });

  // An answer for other text than the field holds now, or after a pick, is dropped unseen.
  document.addEventListener("htmx:beforeSwap", function (event) {
    var listbox = event.detail.target;
    if (!listbox || listbox.getAttribute("role") !== "listbox") return;
    var input = inputOf(listbox);
    if (input && !current(input, event.detail.xhr)) event.detail.shouldSwap = false;
  });

  // New suggestions arrived: number them, say the status, open the list if the field has focus.
  document.addEventListener("htmx:afterSwap", function (event) {
    var listbox = event.detail.target;
    if (!listbox || listbox.getAttribute("role") !== "listbox") return;
    var input = inputOf(listbox);
    if (!input) return;
    delete input.dataset.pending;
    say(input, statusText(listbox));
    optionsOf(listbox).forEach(function (option, i) { option.id = listbox.id + "-" + i; });
    input.removeAttribute("aria-activedescendant");
    setOpen(input, document.activeElement === input && !input.dataset.picked);
  });

  // htmx swaps no 4xx/5xx answer (base.html): say it in the status line rather than nothing.
  function failed(event, fallback, answered) {
    var listbox = event.detail.target;
    if (!listbox || listbox.getAttribute("role") !== "listbox") return;
    var input = inputOf(listbox);
    // An unsent request has no answer URL to compare: the field's latest one failed.
    if (!input || (answered && !current(input, event.detail.xhr))) return;
    delete input.dataset.pending;
    var text = "";
    var xhr = event.detail.xhr;
    if (xhr && xhr.responseText) {
      text = statusText(new DOMParser().parseFromString(xhr.responseText, "text/html"));
    }
    say(input, text || fallback(xhr));
  }

  document.addEventListener("htmx:responseError", function (event) {
    failed(event, function (xhr) { return "No suggestions: the server answered " + xhr.status + "."; }, true);
  });
  document.addEventListener("htmx:sendError", function (event) {
    failed(event, function () { return "No suggestions: the server could not be reached."; }, false);
  });
})();
