(function (map, data) {
  "use strict";
  var words = data.words || {};
  function escapeHtml(text) {
    var span = document.createElement("span");
    span.textContent = text;
    return span.innerHTML;
  }
  // Every text from data goes into the page as a DOM text node (textContent), never as HTML.
  function rowsTable(rows) {
    var table = document.createElement("table");
    rows.forEach(function (row) {
      var tr = table.insertRow();
      var th = document.createElement("th");
      th.textContent = row[0];
      tr.appendChild(th);
      tr.insertCell().textContent = row[1];
    });
    return table;
  }
  function popupContent(p) {
    var box = document.createElement("div");
    box.className = "kpu-popup";
    var title = document.createElement("b");
    title.textContent = p.t;
    box.appendChild(title);
    if (p.r && p.r.length) { box.appendChild(rowsTable(p.r)); }
    if (p.d && p.d.length) {
      var details = document.createElement("details");
      var summary = document.createElement("summary");
      summary.textContent = words.items;
      details.appendChild(summary);
      details.appendChild(rowsTable(p.d));
      box.appendChild(details);
    }
    return box;
  }
  var byId = {};
  var labelled = [];
  function bind(feature, layer) {
    var p = feature.properties || {};
    layer.bindPopup(function () { return popupContent(p); }, {maxWidth: 320});
    if (p.id) { byId[p.id] = layer; }
    if (p.lz) {
      var text = document.createElement("span");
      text.textContent = p.t;
      layer.bindTooltip(text, {permanent: true, direction: "right", offset: [6, 0], className: "kpu-label",
                               interactive: false});
      labelled.push({layer: layer, zoom: p.lz});
    }
  }
  function placeLabels() {
    var zoom = map.getZoom();
    labelled.forEach(function (entry) {
      if (zoom >= entry.zoom && map.hasLayer(entry.layer)) { entry.layer.openTooltip(); }
      else { entry.layer.closeTooltip(); }
    });
  }
  function styler(base) {
    return function (feature) {
      return Object.assign({}, base, (feature.properties && feature.properties.s) || {});
    };
  }
  var arrows = [];
  function placeArrows() {
    arrows.forEach(function (a) {
      var pts = a.latlngs.map(function (ll) { return map.latLngToLayerPoint(ll); });
      var lengths = [], total = 0;
      for (var i = 1; i < pts.length; i++) { lengths.push(pts[i].distanceTo(pts[i - 1])); total += lengths[i - 1]; }
      if (total < 24) { a.line.setLatLngs([]); return; }
      var rest = total * 0.4, k = 0;  // off-centre, so out-and-back arrows on one road do not overlap
      while (k < lengths.length - 1 && (rest > lengths[k] || lengths[k] === 0)) { rest -= lengths[k]; k++; }
      var p0 = pts[k], p1 = pts[k + 1], t = lengths[k] > 0 ? rest / lengths[k] : 0;
      var tip = L.point(p0.x + (p1.x - p0.x) * t, p0.y + (p1.y - p0.y) * t);
      var angle = Math.atan2(p1.y - p0.y, p1.x - p0.x), size = 10, spread = 0.5;
      var left = L.point(tip.x - size * Math.cos(angle - spread), tip.y - size * Math.sin(angle - spread));
      var right = L.point(tip.x - size * Math.cos(angle + spread), tip.y - size * Math.sin(angle + spread));
      a.line.setLatLngs([left, tip, right].map(function (p) { return map.layerPointToLatLng(p); }));
    });
  }
  var overlays = {};
  var baseLayers = {};
  baseLayers[data.offlineLabel] = L.layerGroup().addTo(map);
  if (data.tiles) {
    baseLayers[data.tiles.label] = L.tileLayer(data.tiles.url, {attribution: data.tiles.attribution, maxZoom: 18});
  }
  data.layers.forEach(function (spec) {
    var style = styler(spec.style);
    var options = {style: style};
    if (spec.kind === "polygon" && !spec.interactive) {
      options.interactive = false;
    } else {
      options.onEachFeature = bind;
    }
    if (spec.kind === "point") {
      options.pointToLayer = function (feature, latlng) { return L.circleMarker(latlng, style(feature)); };
    }
    var group = L.geoJSON({type: "FeatureCollection", features: spec.features}, options);
    if (spec.kind === "route") {
      spec.features.forEach(function (feature) {
        var colour = style(feature).color;
        feature.geometry.coordinates.forEach(function (part) {
          var line = L.polyline([], {color: colour, weight: 3, opacity: 1, interactive: false});
          arrows.push({line: line, latlngs: part.map(function (c) { return L.latLng(c[1], c[0]); })});
          group.addLayer(line);
        });
      });
    }
    if (spec.show) { group.addTo(map); }
    overlays[spec.label] = group;
  });

  // The time control: where each vehicle is at a chosen moment (tracks of [minute, lon, lat]).
  var time = data.time;
  var clock = null;
  if (time && time.tracks && time.tracks.length) {
    var positions = L.layerGroup();
    var markers = time.tracks.map(function (track) {
      var marker = L.circleMarker([track.p[0][2], track.p[0][1]], {
        radius: 7, color: "#ffffff", weight: 2, fillColor: track.c, fillOpacity: 1, className: "kpu-vehicle"
      });
      var name = document.createElement("span");
      name.textContent = track.v;
      marker.bindTooltip(name);
      marker.addTo(positions);
      return marker;
    });
    function where(points, minute) {
      if (minute <= points[0][0]) { return {at: points[0], moving: false}; }
      var last = points[points.length - 1];
      if (minute >= last[0]) { return {at: last, moving: false}; }
      var lo = 0, hi = points.length - 1;
      while (hi - lo > 1) { var mid = (lo + hi) >> 1; if (points[mid][0] <= minute) { lo = mid; } else { hi = mid; } }
      var a = points[lo], b = points[hi], span = b[0] - a[0], f = span > 0 ? (minute - a[0]) / span : 0;
      var moving = a[1] !== b[1] || a[2] !== b[2];
      return {at: [minute, a[1] + (b[1] - a[1]) * f, a[2] + (b[2] - a[2]) * f], moving: moving};
    }
    function pad(n) { return (n < 10 ? "0" : "") + n; }
    function clockText(minute) {
      var day = Math.min(time.days.length - 1, Math.floor(minute / 1440)), rest = minute - day * 1440;
      if (rest >= 1440) { rest = 1439; }
      return time.days[day] + ", " + pad(Math.floor(rest / 60)) + time.separator + pad(rest % 60) + " " + time.zone;
    }
    var control = L.control({position: "bottomright"});
    control.onAdd = function () {
      var box = L.DomUtil.create("div", "kpu-time");
      box.id = "kpu-time";
      var caption = document.createElement("div");
      caption.textContent = words.time;
      var when = document.createElement("div");
      when.className = "kpu-clock";
      var input = document.createElement("input");
      input.type = "range";
      input.id = "kpu-time-input";
      input.min = 0; input.max = time.length; input.step = time.step; input.value = time.initial;
      var count = document.createElement("div");
      count.className = "kpu-moving";
      var play = document.createElement("button");
      play.type = "button";
      play.textContent = words.play;
      [caption, when, input, play, count].forEach(function (el) { box.appendChild(el); });
      function show() {
        var minute = Number(input.value), moving = 0;
        when.textContent = clockText(minute);
        time.tracks.forEach(function (track, i) {
          var here = where(track.p, minute);
          markers[i].setLatLng([here.at[2], here.at[1]]);
          markers[i].setStyle({fillOpacity: here.moving ? 1 : 0.45});
          if (here.moving) { moving++; }
        });
        count.textContent = words.moving.replace("{n}", String(moving));
        box.dataset.minute = String(minute);
        box.dataset.moving = String(moving);
      }
      var timer = null;
      play.addEventListener("click", function () {
        if (timer) { clearInterval(timer); timer = null; play.textContent = words.play; return; }
        play.textContent = words.pause;
        timer = setInterval(function () {
          var next = Number(input.value) + time.step;
          if (next > time.length) { next = 0; }
          input.value = next;
          show();
        }, 300);
      });
      input.addEventListener("input", show);
      show();
      clock = show;
      L.DomEvent.disableClickPropagation(box);
      L.DomEvent.disableScrollPropagation(box);
      return box;
    };
    positions.addTo(map);
    overlays[escapeHtml(words.positions)] = positions;  // Leaflet writes layer names as HTML
    control.addTo(map);
  }

  L.control.layers(baseLayers, overlays, {collapsed: true}).addTo(map);
  var legend = L.control({position: "bottomleft"});
  legend.onAdd = function () {
    var div = L.DomUtil.create("div", "kpu-legend");
    div.innerHTML = data.legendHtml;  // built and escaped by the planner
    if (window.innerWidth < 700) { div.querySelector("details").removeAttribute("open"); }  // phones: folded
    L.DomEvent.disableClickPropagation(div);
    L.DomEvent.disableScrollPropagation(div);
    return div;
  };
  legend.addTo(map);

  // The trip table beside the map (the Lanal view): one row per sea trip.
  if (data.table) {
    var panel = document.createElement("div");
    panel.className = "kpu-panel";
    panel.id = "kpu-trips";
    var heading = document.createElement("h2");
    heading.textContent = data.table.title;
    panel.appendChild(heading);
    if (!data.table.rows.length) {
      var none = document.createElement("p");
      none.textContent = data.table.empty;
      panel.appendChild(none);
    } else {
      var table = document.createElement("table");
      var head = table.createTHead().insertRow();
      data.table.columns.forEach(function (name) {
        var th = document.createElement("th");
        th.textContent = name;
        head.appendChild(th);
      });
      var body = table.createTBody();
      data.table.rows.forEach(function (row) {
        var tr = body.insertRow();
        tr.className = "kpu-trip";
        tr.dataset.trip = row.id;
        row.cells.forEach(function (lines) {
          var td = tr.insertCell();
          lines.forEach(function (line) {
            var div = document.createElement("div");
            div.textContent = line;
            td.appendChild(div);
          });
        });
        tr.addEventListener("click", function () {
          var target = byId[row.id];
          if (target) { map.fitBounds(target.getBounds(), {padding: [30, 30]}); target.openPopup(); }
        });
      });
      panel.appendChild(table);
    }
    document.body.appendChild(panel);
    document.body.classList.add("kpu-with-panel");
    map.invalidateSize();
  }

  var b = data.bounds;
  map.fitBounds([[b[1], b[0]], [b[3], b[2]]], {padding: [20, 20]});
  placeArrows();
  placeLabels();
  map.on("zoomend", function () { placeArrows(); placeLabels(); });
  map.on("overlayadd", placeLabels);
  var wanted = /^#popup=(.+)$/.exec(window.location.hash);
  if (wanted) {
    var target = byId[decodeURIComponent(wanted[1])];
    if (target && map.hasLayer(target)) {
      map.setView(target.getLatLng ? target.getLatLng() : target.getBounds().getCenter(), Math.max(map.getZoom(), 10));
      target.openPopup();
    }
  }
})
