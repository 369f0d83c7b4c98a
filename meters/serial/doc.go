// Package serial holds what the USB-serial power meters share: opening a
// port in full raw mode, finding devices by USB vendor and product id under
// a sysfs root, explaining a permission refusal, and fitting a device's own
// clock onto the harness clock.
//
// The protocols themselves live in subpackages (powersensor3, pmdusb); the
// device emulators that tests and `harness meters emulate` use live in
// emulate.
package serial
