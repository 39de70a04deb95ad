# Tests of the CUDA/NCCL code (src/cuda, src/comm/comm_nccl.c). Included from
# tests/CMakeLists.txt; does nothing unless the CUDA backend is built, for a GPU
# (GRUREC_CUDA) or on grurec's host emulation of CUDA (GRUREC_CUDA_EMU, where every one of
# them runs). On machines with fewer usable GPUs than ranks (or no driver) the tests print
# "SKIP: ..." and ctest reports them as skipped.
if((GRUREC_CUDA OR GRUREC_CUDA_EMU) AND GRUREC_MPI)
  # An MPI program, like test_comm.
  add_executable(test_comm_nccl ${CMAKE_CURRENT_LIST_DIR}/test_comm_nccl.c)
  target_link_libraries(test_comm_nccl PRIVATE grurec_cuda grurec_core MPI::MPI_C)

  # mpirun as tests/comm_test.sh runs it (oversubscribed; containers run as root).
  # The mpirun next to FindMPI's mpiexec (not /bin/mpirun on merged-/usr systems: Open MPI
  # takes its prefix from that path and refuses "/").
  get_filename_component(_grurec_mpi_bin "${MPIEXEC_EXECUTABLE}" DIRECTORY)
  find_program(GRUREC_TEST_MPIRUN NAMES mpirun HINTS "${_grurec_mpi_bin}" NO_DEFAULT_PATH)
  if(NOT GRUREC_TEST_MPIRUN)
    set(GRUREC_TEST_MPIRUN ${MPIEXEC_EXECUTABLE})
  endif()
  set(_grurec_nccl_mpirun ${GRUREC_TEST_MPIRUN} --oversubscribe --allow-run-as-root -np 2)

  # Sums on 2 ranks / 2 GPUs: exact, bitwise equal across ranks, the group variant.
  add_test(NAME comm_nccl_test COMMAND ${_grurec_nccl_mpirun} $<TARGET_FILE:test_comm_nccl> basic)
  # The deadline: rank 1 sleeps 30 s, rank 0 must end the job after 2 s naming the all-reduce.
  add_test(NAME comm_nccl_timeout_test COMMAND ${_grurec_nccl_mpirun} $<TARGET_FILE:test_comm_nccl> hang 2)
  # The same deadline when the wait watches an event behind a started all-reduce (the step's way).
  add_test(NAME comm_nccl_event_timeout_test COMMAND ${_grurec_nccl_mpirun} $<TARGET_FILE:test_comm_nccl> hang-event 2)
  set_tests_properties(comm_nccl_test comm_nccl_timeout_test comm_nccl_event_timeout_test PROPERTIES
    RUN_SERIAL TRUE TIMEOUT 120
    ENVIRONMENT "OMPI_ALLOW_RUN_AS_ROOT=1;OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1")
  # It fails on purpose (MPI_Abort): pass on its message (or a skip), never on "UNEXPECTED".
  set_tests_properties(comm_nccl_timeout_test comm_nccl_event_timeout_test PROPERTIES
    PASS_REGULAR_EXPRESSION "SKIP: |rank 0: NCCL all-reduce of 1 floats did not complete within 2 s \\(hang test\\)"
    FAIL_REGULAR_EXPRESSION "UNEXPECTED")
  # comm_nccl_init's refusals: no GPU, (emulation) an older NCCL, ranks with other versions.
  grurec_script_test(comm_nccl_setup_test comm_nccl_setup_test.sh)
  # test_comm_nccl's "SKIP: ..." (rank 0, fewer GPUs than ranks) ends it before any check:
  # ctest shows the test as skipped (the run ends with exit 0).
  set_tests_properties(comm_nccl_test comm_nccl_timeout_test comm_nccl_event_timeout_test PROPERTIES SKIP_REGULAR_EXPRESSION "SKIP: ")
endif()

if(GRUREC_CUDA OR GRUREC_CUDA_EMU)
  # The CUDA backend against the CPU backend (Criterion): gradients, updates, several
  # steps, evaluation, row moves; GPU runs bitwise repeatable. Built and registered as
  # the CPU backend's test_backend (grurec_core_test: --jobs 1), plus the CUDA libraries
  # (device_info.h, cudaMemcpy of the device gradients).
  grurec_core_test(test_cuda_backend ${CMAKE_CURRENT_LIST_DIR}/test_cuda_backend.c)
  target_link_libraries(test_cuda_backend PRIVATE grurec_cuda)
  # grurec train --device cuda against --device cpu for every loss and embedding mode, on 1
  # and 2 ranks (NCCL), and eval / recommend of a GPU-trained model on both devices.
  grurec_script_test(cuda_train_test_1rank cuda_train_test.sh ${CMAKE_BINARY_DIR} 1)
  if(GRUREC_MPI)
    grurec_script_test(cuda_train_test_2ranks cuda_train_test.sh ${CMAKE_BINARY_DIR} 2)
    # --item-tables sharded on GPU ranks (1, 2 and 4, oversubscribed) against CPU ranks, for
    # every embedding mode: parameters and evaluations; a stop and resume, a reshard.
    grurec_script_test(cuda_sharded_test cuda_sharded_test.sh)
    set_tests_properties(cuda_sharded_test PROPERTIES RUN_SERIAL TRUE)
  endif()
endif()

if(GRUREC_CUDA_EMU)
  # The emulation itself (CUDA C, compiled as C++ against it): the CUDA semantics it keeps
  # and what it reports (host access to device memory, overruns, host pointers given to
  # kernels, divergent barriers, copies, cuBLAS's column-major semantics, devices).
  set_source_files_properties(${CMAKE_CURRENT_LIST_DIR}/test_cuda_emu.cu PROPERTIES LANGUAGE CXX)
  grurec_core_test(test_cuda_emu ${CMAKE_CURRENT_LIST_DIR}/test_cuda_emu.cu)
  target_link_libraries(test_cuda_emu PRIVATE grurec_cuda)
  set_target_properties(test_cuda_emu PROPERTIES CXX_STANDARD 17 CXX_STANDARD_REQUIRED ON CXX_EXTENSIONS OFF)
endif()

if(GRUREC_CUDA_EMU)
  # bench/gpu_check.sh --dry-run, the GPU machine's check, runs its whole flow on this
  # build's emulated GPU (its device_test is the one above). The script exits 0 whatever
  # its checks say: its failed checks and runs fail the test.
  add_test(NAME gpu_check_dry_run COMMAND bash ${PROJECT_SOURCE_DIR}/bench/gpu_check.sh --dry-run --build ${CMAKE_BINARY_DIR})
  set_tests_properties(gpu_check_dry_run PROPERTIES
    ENVIRONMENT "OUT=${CMAKE_BINARY_DIR}/gpu-check-results;GPU_CHECK_TESTS=test_cuda_backend"
    FAIL_REGULAR_EXPRESSION "check\\(s\\) FAILED|gpu_check: FAILED| FAILED: exit status|status: stopped")
endif()

# Under ASan the Criterion binaries that start no MPI check leaks too (as tests/CMakeLists.txt).
if(GRUREC_SANITIZE AND (GRUREC_CUDA OR GRUREC_CUDA_EMU))
  set_tests_properties(test_cuda_backend PROPERTIES ENVIRONMENT "ASAN_OPTIONS=detect_leaks=1")
  if(GRUREC_CUDA_EMU)
    set_tests_properties(test_cuda_emu PROPERTIES ENVIRONMENT "ASAN_OPTIONS=detect_leaks=1")
  endif()
endif()
