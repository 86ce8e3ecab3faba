// Progressive touches only: every page works without this file.
"use strict";

// A filter form sends only the inputs that say something, so list URLs stay short to read.
document.addEventListener("submit", (event) => {
  const form = event.target;
  if (form.method.toLowerCase() !== "get") return;
  for (const input of form.querySelectorAll("input, select")) {
    if (input.type !== "checkbox" && input.value === "") input.disabled = true;
  }
});

// Sending a form twice (a double click) would send the same change twice.
document.addEventListener("submit", (event) => {
  const form = event.target;
  if (form.method.toLowerCase() !== "post") return;
  for (const button of form.querySelectorAll("button[type=submit], button:not([type])")) {
    setTimeout(() => { button.disabled = true; }, 0);
  }
});
