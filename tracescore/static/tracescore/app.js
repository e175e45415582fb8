// Small behaviours of every page, kept in a file: the Content-Security-Policy
// allows no inline script, no inline style attribute and no eval.
(function () {
  "use strict";

  // A form marked data-navigate-on-change goes to the URL chosen in its select
  // (the scorer switch on a results page).
  document.addEventListener("change", (event) => {
    const form = event.target.closest("form[data-navigate-on-change]");
    if (form && event.target.value) window.location = event.target.value;
  });

  // Span rows are indented by their depth in the tree (data-depth), here
  // rather than in a style attribute; also for rows htmx swaps in later.
  const indent = (root) => {
    const rows = [...root.querySelectorAll("[data-depth]")];
    if (root.matches && root.matches("[data-depth]")) rows.push(root);
    rows.forEach((el) => {
      el.style.paddingLeft = `${Number(el.dataset.depth) || 0}rem`;
    });
  };
  if (window.htmx) htmx.onLoad(indent);
  else document.addEventListener("DOMContentLoaded", () => indent(document));
})();
