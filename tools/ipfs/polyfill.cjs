// Preloaded with `node --require` before js-ipfs: some of its current dependencies (mortice,
// it-queue, abort-error) call Promise.withResolvers, which Node only has from version 22.
if (typeof Promise.withResolvers !== "function") {
  Object.defineProperty(Promise, "withResolvers", {
    configurable: true,
    writable: true,
    value: function withResolvers() {
      let resolve;
      let reject;
      const promise = new this((res, rej) => {
        resolve = res;
        reject = rej;
      });
      return { promise, resolve, reject };
    },
  });
}
