// For a classic <script src=".../provider-sync.global.js">: defines the
// global `ProviderSync`. `ProviderSync.ready` resolves (with the module) once
// the wasm is loaded; then every export is on `ProviderSync` too:
//
//   await ProviderSync.ready;
//   const sync = new ProviderSync.ProviderSyncService({ apiBaseUrl: "/api/provider-sync" });
(function () {
  var script = document.currentScript;
  var base = script && script.src ? script.src : document.baseURI;
  var global = (window.ProviderSync = window.ProviderSync || {});
  global.ready = import(new URL("./index.js", base).href).then(function (module) {
    return module.load().then(function () {
      Object.keys(module).forEach(function (name) {
        global[name] = module[name];
      });
      return module;
    });
  });
})();
