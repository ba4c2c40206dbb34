// Live updates: the server pushes the page's live part (already rendered, escaped) when it changes.
(function () {
  var main = document.getElementById("live"), conn = document.getElementById("conn");
  if (!main || !window.EventSource) { if (conn) conn.textContent = "static"; return; }
  var es = new EventSource("/web/events?page=" + encodeURIComponent(main.dataset.page));
  es.addEventListener("update", function (e) { main.innerHTML = e.data; });
  es.onopen = function () { conn.textContent = "live"; conn.className = "conn ok"; };
  es.onerror = function () { conn.textContent = "reconnecting…"; conn.className = "conn bad"; };
})();
