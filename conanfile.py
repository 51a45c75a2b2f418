# Conan 2 recipe for qtensor, after conan-center-index's header-only template.
# It lives in the repository, so the sources come from exports_sources instead of
# a download; the version is read from CMakeLists.txt. Try it with
#   conan create . --build=missing
# (add -o "&:with_highway=False" -o "&:with_xsimd=False" for the scalar-only package).
import os
import re

from conan import ConanFile
from conan.errors import ConanInvalidConfiguration
from conan.tools.build import check_min_cppstd
from conan.tools.files import copy, load
from conan.tools.layout import basic_layout
from conan.tools.scm import Version

required_conan_version = ">=2.0"


class QtensorConan(ConanFile):
    name = "qtensor"
    description = "Header-only C++20 library for quantized tensors (GGUF Q4_0/Q8_0/K-quants, fake-quant for QAT)"
    license = "Apache-2.0"
    topics = ("quantization", "gguf", "simd", "tensor", "header-only")
    package_type = "header-library"
    settings = "os", "arch", "compiler", "build_type"
    options = {
        "with_highway": [True, False],  # QTENSOR_WITH_HIGHWAY: run-time SIMD dispatch
        "with_xsimd": [True, False],    # QTENSOR_WITH_XSIMD: the xsimd backend
        "with_json": [True, False],     # QTENSOR_WITH_JSON: safetensors/config.json readers, Gemma 4
    }
    default_options = {
        "with_highway": True,
        "with_xsimd": True,
        "with_json": True,
    }
    exports_sources = "include/*", "LICENSE"
    no_copy_source = True

    @property
    def _min_cppstd(self):
        return 20

    # First releases whose C++20 support (concepts, <span>, <bit>) the headers need.
    @property
    def _compilers_minimum_version(self):
        return {
            "gcc": "11",
            "clang": "14",
            "apple-clang": "14",
            "msvc": "193",
        }

    def set_version(self):
        cmakelists = load(self, os.path.join(self.recipe_folder, "CMakeLists.txt"))
        self.version = re.search(r"project\(qtensor\s+VERSION\s+([0-9.]+)", cmakelists).group(1)

    def layout(self):
        basic_layout(self, src_folder=".")

    def requirements(self):
        # Highway is a compiled library whose symbols consumers link, hence
        # transitive_libs; both appear in qtensor's public headers.
        if self.options.with_highway:
            self.requires("highway/[>=1.0.3 <2]", transitive_headers=True, transitive_libs=True)
        if self.options.with_xsimd:
            self.requires("xsimd/[>=8.1.0 <15]", transitive_headers=True)
        if self.options.with_json:
            self.requires("nlohmann_json/[>=3.11 <4]", transitive_headers=True)

    def package_id(self):
        # The package is the same headers whatever the options; they only change
        # the requirements and the defines below.
        self.info.clear()

    def validate(self):
        if self.settings.compiler.get_safe("cppstd"):
            check_min_cppstd(self, self._min_cppstd)
        minimum_version = self._compilers_minimum_version.get(str(self.settings.compiler), False)
        if minimum_version and Version(self.settings.compiler.version) < minimum_version:
            raise ConanInvalidConfiguration(
                f"{self.ref} requires C++{self._min_cppstd}, which your compiler does not support.")

    def build(self):
        pass

    def package(self):
        copy(self, "LICENSE", self.source_folder, os.path.join(self.package_folder, "licenses"))
        copy(self, "*.hpp", os.path.join(self.source_folder, "include"),
             os.path.join(self.package_folder, "include"))

    def package_info(self):
        self.cpp_info.bindirs = []
        self.cpp_info.libdirs = []
        self.cpp_info.set_property("cmake_file_name", "qtensor")
        self.cpp_info.set_property("cmake_target_name", "qtensor::qtensor")
        self.cpp_info.set_property("pkg_config_name", "qtensor")
        # Mirror the CMake target's usage requirements (CMakeLists.txt).
        if self.options.with_highway:
            self.cpp_info.defines.append("QTENSOR_HAVE_HIGHWAY=1")
            self.cpp_info.requires.append("highway::hwy")
        if self.options.with_xsimd:
            self.cpp_info.defines.append("QTENSOR_HAVE_XSIMD=1")
            self.cpp_info.requires.append("xsimd::xsimd")
        if self.options.with_json:
            self.cpp_info.defines.append("QTENSOR_HAVE_JSON=1")
            self.cpp_info.requires.append("nlohmann_json::nlohmann_json")
