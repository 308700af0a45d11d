// Sorting: a button in each header; the sorted column carries aria-sort (shown as an arrow). A first click
// sorts best first (the button's data-first), a second click reverses; empty cells stay last either way.
document.querySelectorAll('table.sortable').forEach(function (table) {
  var heads = table.tHead.rows[0].cells;
  Array.prototype.forEach.call(heads, function (th, col) {
    var button = th.querySelector('button');
    if (!button) { return; }
    button.addEventListener('click', function () {
      var now = th.getAttribute('aria-sort');
      var dir = now ? (now === 'descending' ? 'ascending' : 'descending') : button.getAttribute('data-first');
      Array.prototype.forEach.call(heads, function (h) { h.removeAttribute('aria-sort'); });
      th.setAttribute('aria-sort', dir);
      var body = table.tBodies[0];
      var rows = Array.prototype.slice.call(body.rows);
      var sign = dir === 'descending' ? -1 : 1;
      rows.sort(function (a, b) {
        var x = a.cells[col].getAttribute('data-value'), y = b.cells[col].getAttribute('data-value');
        if (x === null || y === null) { return (x === null) - (y === null); }
        var nx = parseFloat(x), ny = parseFloat(y);
        var cmp = (isNaN(nx) || isNaN(ny)) ? String(x).localeCompare(String(y)) : nx - ny;
        return sign * cmp;
      });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });
});
// A link to a row or section inside a closed <details> opens it first.
function openTarget() {
  var el = location.hash && document.getElementById(decodeURIComponent(location.hash.slice(1)));
  for (; el; el = el.parentElement) { if (el.tagName === 'DETAILS') { el.open = true; } }
}
window.addEventListener('hashchange', openTarget);
openTarget();
function setAll(open) {
  document.querySelectorAll('#datasets details').forEach(function (d) { d.open = open; });
}
document.getElementById('expand-all').addEventListener('click', function () { setAll(true); });
document.getElementById('collapse-all').addEventListener('click', function () { setAll(false); });
