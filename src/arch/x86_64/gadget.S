/* The remote-syscall gadget, copied into targets: syscall; int3. */
	.text
	.globl cr_syscall_gadget
	.type cr_syscall_gadget, @function
cr_syscall_gadget:
	syscall
	int3
	.size cr_syscall_gadget, . - cr_syscall_gadget
	.section .note.GNU-stack,"",@progbits
