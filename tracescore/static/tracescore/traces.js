// Trace selection for "Score Selected": kept in sessionStorage, so it survives
// paging and filtering (htmx swaps the table) until it is scored or cleared.
(function () {
  "use strict";
  const KEY = "tracescore.selection";
  const load = () => {
    try { return new Set(JSON.parse(sessionStorage.getItem(KEY) || "[]")); }
    catch (e) { return new Set(); }
  };
  let selected = load();
  const save = () => sessionStorage.setItem(KEY, JSON.stringify([...selected]));
  const $ = (selector, root) => (root || document).querySelector(selector);
  const $$ = (selector, root) => [...(root || document).querySelectorAll(selector)];

  function render() {
    const count = selected.size;
    const counter = $("#selection-count");
    if (counter) counter.textContent = `${count} trace${count === 1 ? "" : "s"} selected`;
    const button = $("#score-selected");
    if (button) button.disabled = count === 0;
    const clear = $("#clear-selection");
    if (clear) clear.hidden = count === 0;
    const boxes = $$(".select-trace");
    boxes.forEach((box) => { box.checked = selected.has(box.value); });
    const all = $("#select-page");
    if (all) {
      const checked = boxes.filter((b) => b.checked).length;
      all.checked = boxes.length > 0 && checked === boxes.length;
      all.indeterminate = checked > 0 && checked < boxes.length;
    }
  }

  document.addEventListener("change", (event) => {
    const target = event.target;
    if (target.matches(".select-trace")) {
      if (target.checked) selected.add(target.value); else selected.delete(target.value);
    } else if (target.matches("#select-page")) {
      $$(".select-trace").forEach((box) => {
        if (target.checked) selected.add(box.value); else selected.delete(box.value);
      });
    } else {
      return;
    }
    save();
    render();
  });

  document.addEventListener("click", (event) => {
    if (event.target.matches("#clear-selection")) {
      selected.clear(); save(); render();
    }
    if (event.target.matches(".close-modal")) {
      $("#score-modal").close();
    }
  });

  // The modal's form carries the selection as repeated trace_ids fields.
  document.addEventListener("htmx:afterSwap", (event) => {
    if (event.detail.target.id === "modal-body") {
      const holder = $("#batch-trace-ids");
      if (holder) {
        holder.replaceChildren(...[...selected].map((id) => {
          const input = document.createElement("input");
          input.type = "hidden"; input.name = "trace_ids"; input.value = id;
          return input;
        }));
      }
      const dialog = $("#score-modal");
      if (!dialog.open) dialog.showModal();
    }
    render();
  });

  document.body.addEventListener("batchStarted", (event) => {
    const { progressUrl } = event.detail;
    selected.clear(); save(); render();
    const progress = $("#batch-progress");
    if (progress) {
      const slot = document.createElement("div");
      progress.prepend(slot);
      htmx.ajax("GET", `${progressUrl}?poll=1`, { target: slot, swap: "outerHTML" });
    }
    setTimeout(() => { const dialog = $("#score-modal"); if (dialog.open) dialog.close(); }, 1500);
  });

  // The modal asks for the selection's size (sent here, not by hx-vals "js:", which needs eval).
  document.addEventListener("htmx:configRequest", (event) => {
    if (event.detail.elt.id === "score-selected") event.detail.parameters.count = selected.size;
  });

  // Let htmx swap 4xx answers (form errors in the modal) and a 503 (the task
  // queue is away: the modal says so) instead of dropping them.
  htmx.config.responseHandling = [
    { code: "204", swap: false },
    { code: "[23]..", swap: true },
    { code: "4..", swap: true, error: false },
    { code: "503", swap: true, error: false },
    { code: "...", swap: false, error: true },
  ];

  window.tracescore = { selectedCount: () => selected.size };
  render();
})();
