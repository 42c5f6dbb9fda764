// Slots of the worker cases' control block (an Int32Array over a
// SharedArrayBuffer): the round that may start and the round that must stop.
export const CTL = { GO: 0, STOP: 1, LENGTH: 2 };
