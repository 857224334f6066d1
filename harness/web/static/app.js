// Progressive enhancement only: every page works without this file.
// A search box with data-filter="TABLE-ID" hides the rows of that table that do not contain its text.
document.querySelectorAll("input.filter[data-filter]").forEach((box) => {
  const table = document.getElementById(box.dataset.filter);
  if (!table) return;
  box.hidden = false;
  box.addEventListener("input", () => {
    const wanted = box.value.trim().toLowerCase();
    table.querySelectorAll("tbody tr").forEach((row) => {
      row.hidden = wanted !== "" && !row.textContent.toLowerCase().includes(wanted);
    });
  });
});
