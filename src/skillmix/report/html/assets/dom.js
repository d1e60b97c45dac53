// What every report page's script starts with: building elements where text stays text.
var SkillmixPage = (function () {
  "use strict";
  function $(id) { return document.getElementById(id); }
  // An element with attributes; the children after them become text nodes unless they
  // are nodes already, so model text never becomes markup.
  function el(tag, attrs) {
    var node = document.createElement(tag);
    if (attrs) {
      Object.keys(attrs).forEach(function (key) {
        var value = attrs[key];
        if (value === null || value === undefined || value === false) return;
        if (key === "class") node.className = value;
        else node.setAttribute(key, String(value));
      });
    }
    for (var i = 2; i < arguments.length; i++) {
      var child = arguments[i];
      if (child === null || child === undefined) continue;
      node.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }
  return {$: $, el: el};
})();
